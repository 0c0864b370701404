# The cluster's shape: where the masters and the Dispatch server live (fixed private
# addresses, so every node's settings are known before anything boots), and what each
# node is told at boot (user data: settings + the scripts in files/, then
# files/node-setup.sh for its role).

data "aws_ec2_instance_type" "agent" {
  instance_type = var.agent_instance_type
}

locals {
  metric_namespace = "Dispatch"
  agents_group     = "${var.name}-agents"
  lifecycle_hook   = "drain-before-termination"

  # Masters spread over the zones: .10, .11, ... of their subnet; the server is .5 of the first.
  master_ips = [
    for i in range(var.master_count) :
    cidrhost(local.subnet_cidrs[i % var.az_count], 10 + floor(i / var.az_count))
  ]
  server_ip = cidrhost(local.subnet_cidrs[0], 5)
  # With several masters ZooKeeper runs on them and agents find the leader through it;
  # Dispatch lists the masters and follows /master/redirect itself.
  zookeeper     = var.master_count > 1 ? join(",", [for ip in local.master_ips : "${ip}:2181"]) : ""
  agents_master = var.master_count > 1 ? "zk://${local.zookeeper}/mesos" : "${local.master_ips[0]}:5050"

  # /etc/dispatch/conf.d/50-cluster.hcl on the server, over the installed dispatch.hcl.
  dispatch_config = templatefile("${path.module}/templates/dispatch-cluster.hcl.tftpl", {
    master_addrs = [for ip in local.master_ips : "${ip}:5050"]
    advertise    = "${local.server_ip}:4646"
    mesos_role   = var.mesos_role
    acl_enabled  = var.dispatch_acl_enabled
    tls          = local.tls_enabled
    tls_ca       = local.tls_ca_set
  })

  settings = {
    CLUSTER_NAME        = var.name
    AWS_REGION          = var.region
    MASTER_IPS          = join(",", local.master_ips)
    ZOOKEEPER           = local.zookeeper
    AGENTS_MASTER       = local.agents_master
    SERVER_IP           = local.server_ip
    METRIC_NAMESPACE    = local.metric_namespace
    AGENT_CPUS          = tostring(data.aws_ec2_instance_type.agent.default_vcpus)
    AGENT_MEMORY_MB     = tostring(data.aws_ec2_instance_type.agent.memory_size)
    AGENTS_GROUP        = local.agents_group
    LIFECYCLE_HOOK      = local.lifecycle_hook
    SECRETS_PREFIX      = "/${var.name}"
    DATADOG             = local.datadog_enabled ? "1" : "0"
    DATADOG_SITE        = var.datadog_site
    GRAFANA_PASSWORD    = local.grafana_password_set ? "1" : "0"
    DISPATCH_ACL        = var.dispatch_acl_enabled ? "1" : "0"
    DISPATCH_TLS        = local.tls_enabled ? "1" : "0"
    DISPATCH_TLS_CA     = local.tls_ca_set ? "1" : "0"
    DISPATCH_CONFIG_B64 = base64encode(local.dispatch_config)
    # heartbeat the lifecycle hook well before drain_timeout_seconds runs out
    DRAIN_HEARTBEAT_SECONDS = tostring(max(15, floor(var.drain_timeout_seconds / 2)))
  }
}

# KEY='value' lines for /etc/dispatch-cluster.env (values single-quoted for the shell).
locals {
  user_data = {
    for role in ["master", "server", "agent"] : role => base64gzip(templatefile("${path.module}/templates/user-data.sh.tftpl", {
      settings = join("\n", [
        for k, v in merge(local.settings, { NODE_ROLE = role }) :
        "${k}='${replace(v, "'", "'\\''")}'"
      ])
      node_setup    = file("${path.module}/files/node-setup.sh")
      agent_guard   = file("${path.module}/files/agent-guard.sh")
      queue_metrics = file("${path.module}/files/queue-metrics.sh")
    }))
  }
}
