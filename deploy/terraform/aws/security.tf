# Security groups. The demo's caveat was an API open to the internet; here nothing is
# reachable from outside the VPC by default: the nodes talk to each other (Mesos, the
# API, ZooKeeper), operators use SSM Session Manager (port forwarding, see outputs), and
# admin_cidrs / client_cidrs open exactly the ports named below to the networks listed.

resource "aws_security_group" "cluster" {
  name        = "${var.name}-cluster"
  description = "Dispatch cluster nodes: all traffic between members; nothing from outside unless listed"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-cluster" }
}

resource "aws_vpc_security_group_ingress_rule" "cluster_members" {
  security_group_id            = aws_security_group.cluster.id
  description                  = "Mesos, ZooKeeper, the Dispatch API and sandbox fetches between cluster members"
  referenced_security_group_id = aws_security_group.cluster.id
  ip_protocol                  = "-1"
}

resource "aws_vpc_security_group_egress_rule" "cluster_out" {
  security_group_id = aws_security_group.cluster.id
  description       = "Packages, inputs, S3, CloudWatch, SSM and Datadog"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

locals {
  # port => what it is, opened to admin_cidrs
  admin_ports = {
    22   = "SSH"
    3000 = "Grafana"
    9090 = "Prometheus"
    5050 = "Mesos master UI and API"
    5051 = "Mesos agent API (sandboxes)"
  }
  admin_rules = {
    for pair in setproduct(keys(local.admin_ports), var.admin_cidrs) :
    "${pair[0]}-${pair[1]}" => { port = tonumber(pair[0]), cidr = pair[1] }
  }
}

resource "aws_vpc_security_group_ingress_rule" "admin" {
  for_each = local.admin_rules

  security_group_id = aws_security_group.cluster.id
  description       = "${local.admin_ports[each.value.port]} from an admin network"
  cidr_ipv4         = each.value.cidr
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
}

resource "aws_vpc_security_group_ingress_rule" "api_clients" {
  for_each = toset(var.client_cidrs)

  security_group_id = aws_security_group.cluster.id
  description       = "Dispatch API from a client network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 4646
  to_port           = 4646
}
