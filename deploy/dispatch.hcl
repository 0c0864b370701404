# /etc/dispatch/dispatch.hcl: the Dispatch server's configuration (Nomad agent style).
#
# The systemd unit starts
#   dispatch server -config /etc/dispatch/dispatch.hcl -config /etc/dispatch/conf.d
# This file is read first, then every *.hcl and *.json file of conf.d in name order;
# later files override earlier ones key by key (so a drop-in such as
# /etc/dispatch/conf.d/50-mesos.hcl changes one setting without editing this file).
# Flags on the command line (DISPATCH_OPTS in /etc/default/dispatch) override the files.
#
# Unknown keys and bad values stop the server with file:line and the key. Paths must be
# absolute. `systemctl reload dispatch` (SIGHUP) re-reads the files: log_level, the TLS
# certificates, the ACL bootstrap token file and the Mesos framework's framework_name, role,
# failover_timeout and capabilities change at once (UPDATE_FRAMEWORK: no re-registration,
# running tasks untouched); other changes are logged as "takes effect after a restart".

# Where dispatches, jobs and local task sandboxes live. Everything the API acknowledged is
# in here (SQLite, fsync before the reply): back it up, keep it on a local disk.
data_dir = "/var/lib/dispatch"

# The API listens on bind_addr:ports.http. Anything but loopback needs the acl block below
# with enabled = true (or, to serve an open API on purpose, enabled = false: the server then
# says loudly that it is open). See README "Security".
bind_addr = "127.0.0.1"

ports {
  http = 4646
}

# How others (Mesos agents fetching sandbox files, the Mesos UI's framework link) reach this
# server: host[:port] or a URL. Needed with Mesos when bind_addr is 0.0.0.0.
# advertise {
#   http = "dispatch.internal:4646"
# }

# trace, debug, info, warn, error, off; or a tracing filter such as "info,dispatch=debug".
log_level = "info"

# The embedded local runner (used when no mesos block names a master): what it offers of
# this machine. Leave a key out to offer what the machine has.
local_runner {
  # cpus      = 4
  # memory_mb = 8192
  # disk_mb   = 50000
  # gpus      = 0

  # Put first on every task's PATH: where scripts/install.sh puts transcode.sh, so the
  # shipped jobs/transcode.hcl finds its command.
  task_path = ["/usr/local/libexec/dispatch"]
}

# Run tasks on Apache Mesos instead (Dispatch registers as a framework). The masters are
# tried in order; the leader is found by following /master/redirect. Or name the ZooKeeper
# the masters register in: master = "zk://10.0.1.10:2181,10.0.1.11:2181/mesos".
# mesos {
#   master           = ["10.0.1.10:5050", "10.0.1.11:5050", "10.0.1.12:5050"]
#   role             = ["dispatch"]          # offers for these roles (MULTI_ROLE)
#   principal        = "dispatch"            # authentication and reservations
#   secret_file      = "/etc/dispatch/mesos.secret"   # mode 0600, one line
#   content_type     = "protobuf"            # or "json"
#   framework_name   = "dispatch"
#   user             = "dispatch"            # tasks run as this user unless they set one
#   failover_timeout = "168h"                # running tasks survive a Dispatch outage this long
#   capabilities     = ["GPU_RESOURCES"]     # beyond MULTI_ROLE, PARTITION_AWARE, TASK_KILLING_STATE
#   alloc_dir        = "/tmp/dispatch-allocs"
#   max_backoff      = "15s"
# }

# Metrics: /metrics (Prometheus) is always on the API port. To also send them to a Datadog
# agent's DogStatsD (tags instead of labels):
# telemetry {
#   statsd_address = "127.0.0.1:8125"
# }

# Garbage collection of dispatched children that ended: removed once idle this long
# ("off" keeps them), checked every interval.
gc {
  threshold = "4h"
  interval  = "5m"
}

# High availability: several servers on one PostgreSQL database (one leads, the others stand
# by and forward writes). Without it the SQLite store in data_dir is used (one server). A
# server that loses the lead exits with code 75; the unit's Restart=on-failure brings it back
# as a standby.
# store {
#   postgres      = "postgres://dispatch@db.internal:5432/dispatch"
#   password_file = "/etc/dispatch/pgpass"   # or the password in the URL, or PGPASSFILE
#   lease         = "10s"
# }

# Task drivers jobs may use. raw_exec (commands run unconfined) is off unless listed here
# (or the server runs with -dev), as in Nomad.
driver_allowlist = ["exec", "docker"]

# ACLs: every API call needs a token (X-Nomad-Token or Authorization: Bearer). The
# management token's secret comes from bootstrap_token_file (a UUID, mode 0600:
# `uuidgen > /etc/dispatch/bootstrap.token`), or once from `dispatch acl bootstrap`.
# acl {
#   enabled              = true
#   bootstrap_token_file = "/etc/dispatch/bootstrap.token"
# }

# HTTPS only (rustls). With ca_file and verify_https_client, clients must present a
# certificate signed by that CA (mutual TLS). Renewed files are picked up on reload.
# tls {
#   http                = true
#   cert_file           = "/etc/dispatch/tls/server.pem"
#   key_file            = "/etc/dispatch/tls/server-key.pem"
#   ca_file             = "/etc/dispatch/tls/ca.pem"
#   verify_https_client = true
# }

# Backpressure and connection limits.
# limits {
#   max_pending               = 100000   # beyond it a dispatch gets 429 + Retry-After
#   dispatch_rate             = "50/200" # per token (per address when anonymous): 50/s, 200 at once
#   http_max_conns            = 4096
#   http_max_conns_per_client = 100      # Nomad's default; 0 = no limit
#   http_header_timeout       = "30s"
#   https_handshake_timeout   = "5s"
# }
