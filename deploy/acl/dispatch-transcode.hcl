# An application's policy: dispatch the transcode job and follow what it dispatched, nothing
# else (no registering, no other jobs, no logs, no metrics).
#   dispatch acl policy apply -description "transcode dispatcher" dispatch-transcode deploy/acl/dispatch-transcode.hcl
#   dispatch acl token create -name uploader -policy dispatch-transcode
job "transcode" {
  capabilities = ["dispatch-job", "read-job"]
}
