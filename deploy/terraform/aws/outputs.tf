# What to use once applied. Nothing is reachable from the internet by default: the
# *_tunnel commands forward a local port through SSM Session Manager (needs the AWS CLI
# and its session-manager-plugin).

locals {
  tunnel = "aws ssm start-session --region ${var.region} --target ${aws_instance.dispatch.id} --document-name AWS-StartPortForwardingSession --parameters"
}

output "dispatch_addr" {
  description = "The Dispatch API inside the VPC (DISPATCH_ADDR / NOMAD_ADDR for clients in the VPC or in client_cidrs)."
  value       = "http://${aws_instance.dispatch.private_ip}:4646"
}

output "dispatch_public_addr" {
  description = "The Dispatch API from the networks in client_cidrs (null when none are allowed)."
  value       = length(var.client_cidrs) > 0 ? "http://${aws_instance.dispatch.public_ip}:4646" : null
}

output "dispatch_tunnel" {
  description = "Forward localhost:4646 to the API, then: DISPATCH_ADDR=http://127.0.0.1:4646 scripts/dispatch.sh samples/one.txt"
  value       = "${local.tunnel} '{\"portNumber\":[\"4646\"],\"localPortNumber\":[\"4646\"]}'"
}

output "grafana_url" {
  description = "Grafana with the Dispatch dashboard: directly from admin_cidrs, else http://127.0.0.1:3000 through grafana_tunnel."
  value       = length(var.admin_cidrs) > 0 ? "http://${aws_instance.dispatch.public_ip}:3000/dashboards/f/dispatch" : "http://127.0.0.1:3000 (after grafana_tunnel)"
}

output "grafana_tunnel" {
  description = "Forward localhost:3000 to Grafana on the Dispatch server."
  value       = "${local.tunnel} '{\"portNumber\":[\"3000\"],\"localPortNumber\":[\"3000\"]}'"
}

output "datadog_dashboard_url" {
  description = "Where the queue depth shows in Datadog (null without datadog_api_key)."
  value       = local.datadog_enabled ? "https://app.${var.datadog_site}/dashboard/lists?q=Dispatch" : null
}

output "datadog_queue_depth_url" {
  description = "Datadog's metric explorer on the queue depth per job (null without datadog_api_key)."
  value       = local.datadog_enabled ? "https://app.${var.datadog_site}/metric/explorer?exp_metric=dispatch.queue_depth&exp_group=job" : null
}

output "mesos_masters" {
  description = "The Mesos masters (their UI on port 5050 from admin_cidrs)."
  value       = [for ip in local.master_ips : "http://${ip}:5050"]
}

output "agents_autoscaling_group" {
  description = "The agents' autoscaling group: aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names <this>."
  value       = aws_autoscaling_group.agents.name
}

output "queue_metrics" {
  description = "The CloudWatch metrics the agents scale on."
  value       = "namespace ${local.metric_namespace}, dimension Cluster=${var.name}: AgentsWanted (scale out), AgentsIdle (scale in), PendingCpus, PendingMemoryMB"
}
