# People who run the service: register and stop jobs, dispatch, read logs and sandboxes,
# see the agent and its metrics. Token administration stays with management tokens.
namespace "default" {
  policy = "write"
}

agent {
  policy = "read"
}

operator {
  policy = "write"
}
