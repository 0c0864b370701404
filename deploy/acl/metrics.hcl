# What a metrics scraper (Prometheus, the Datadog Agent) needs for /metrics: agent read.
agent {
  policy = "read"
}
