# Inputs. Copy terraform.tfvars.example to terraform.tfvars and fill in at least image_id.

variable "region" {
  description = "AWS region of the cluster."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name of the cluster: prefix of every resource name and the CloudWatch metric dimension Cluster."
  type        = string
  default     = "dispatch"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name: 2 to 31 characters, lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_cidr" {
  description = "Address range of the cluster's VPC; each availability zone gets a /24 of it."
  type        = string
  default     = "10.42.0.0/16"
}

variable "az_count" {
  description = "Number of availability zones (and subnets) the masters and agents spread over."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 1 && var.az_count <= 6
    error_message = "az_count: 1 to 6."
  }
}

variable "image_id" {
  description = "AMI built by image/dispatch-mesos.pkr.hcl (Debian 12 with Mesos built from Apache's source, ffmpeg, Docker, ZooKeeper, Dispatch, Prometheus and Grafana). Used by every node."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.image_id))
    error_message = "image_id: an AMI ID such as ami-0123456789abcdef0 (run packer build image/ first)."
  }
}

variable "ssh_key_name" {
  description = "EC2 key pair for SSH to the nodes (port 22 is open only to admin_cidrs). null: no key; use SSM Session Manager."
  type        = string
  default     = null
}

variable "admin_cidrs" {
  description = "Networks allowed to reach SSH, Grafana (3000), Prometheus (9090) and the Mesos UIs (5050/5051). Empty (the default): none; use SSM port forwarding (see outputs)."
  type        = list(string)
  default     = []
}

variable "client_cidrs" {
  description = "Networks allowed to reach the Dispatch API (4646). Empty (the default): none from outside the VPC. Never 0.0.0.0/0: list your clients' networks (ACLs and TLS protect the API, a closed network keeps it out of reach)."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.client_cidrs, "0.0.0.0/0")
    error_message = "client_cidrs: 0.0.0.0/0 would expose the API to the whole internet; list your clients' networks."
  }
}

variable "master_count" {
  description = "Mesos masters: 1, or 3 or 5 for a highly available quorum (ZooKeeper then runs on the masters)."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 3, 5], var.master_count)
    error_message = "master_count: 1, 3 or 5."
  }
}

variable "master_instance_type" {
  description = "Instance type of the Mesos masters."
  type        = string
  default     = "t3.medium"
}

variable "server_instance_type" {
  description = "Instance type of the Dispatch server (also runs Prometheus, Grafana and the Datadog Agent)."
  type        = string
  default     = "t3.large"
}

variable "agent_instance_type" {
  description = "Instance type of the Mesos agents that run the transcodes. Its vCPUs and memory size the autoscaling steps."
  type        = string
  default     = "c6i.2xlarge"
}

variable "agent_root_volume_gb" {
  description = "Root volume of each agent in GB (task sandboxes, downloaded inputs, Docker images)."
  type        = number
  default     = 50
}

variable "client_count" {
  description = "Agents to start with (the demo's client_count). After that the queue decides: the group scales between agent_min and agent_max on the pending demand Dispatch exports."
  type        = number
  default     = 2
}

variable "agent_min" {
  description = "Fewest agents the autoscaling group keeps (0 is fine: the first dispatch scales out)."
  type        = number
  default     = 1
}

variable "agent_max" {
  description = "Most agents the autoscaling group starts, whatever the queue says."
  type        = number
  default     = 10
}

variable "scale_out_evaluation_minutes" {
  description = "Minutes the queue must ask for more agents before the group grows."
  type        = number
  default     = 2
}

variable "scale_in_idle_minutes" {
  description = "Minutes with nothing pending and at least one agent's worth of idle CPUs before one agent is removed."
  type        = number
  default     = 15
}

variable "agent_warmup_seconds" {
  description = "Seconds a new agent needs before it takes tasks; scale-out counts warming agents so it does not overshoot."
  type        = number
  default     = 300
}

variable "drain_timeout_seconds" {
  description = "Scale-in guard: an agent chosen for removal stops taking tasks and waits for its running tasks; it heartbeats while tasks run, this is the time between heartbeats before AWS gives up on it."
  type        = number
  default     = 3600

  validation {
    condition     = var.drain_timeout_seconds >= 30 && var.drain_timeout_seconds <= 7200
    error_message = "drain_timeout_seconds: 30 to 7200 (the lifecycle hook's limits)."
  }
}

variable "mesos_role" {
  description = "Mesos role Dispatch registers with (it also receives unreserved resources)."
  type        = string
  default     = "dispatch"
}

variable "datadog_api_key" {
  description = "Datadog API key. Set: the Datadog Agent runs on the Dispatch server and sends the queue metrics (openmetrics check on /metrics). Empty: no Datadog."
  type        = string
  default     = ""
  sensitive   = true
}

variable "datadog_app_key" {
  description = "Datadog application key, with datadog_api_key: imports deploy/datadog/dashboard.json through Datadog's API (curl on the machine running terraform)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "datadog_site" {
  description = "Datadog site of your account: datadoghq.com, datadoghq.eu, us3.datadoghq.com, ..."
  type        = string
  default     = "datadoghq.com"
}

variable "grafana_admin_password" {
  description = "Password of Grafana's admin user on the Dispatch server. Empty: Grafana's default (admin/admin, changed at first login)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "dispatch_acl_enabled" {
  description = "acl { enabled } of the Dispatch config. On (the default): the server makes its management token at first boot in /etc/dispatch/bootstrap.token (read it through SSM: sudo cat ...), and a metrics token for Prometheus, the Datadog check and the queue metrics. Off: the API is open to whoever reaches it (client_cidrs and the VPC)."
  type        = bool
  default     = true
}

variable "dispatch_tls" {
  description = "TLS for the Dispatch API: PEM certificate, key and (optional) CA, written to the server and named in its tls block (HTTPS only; with a CA, clients must present a certificate it signed). The certificate must name the server's private IP and 127.0.0.1 (the server's own tools call it there)."
  type = object({
    cert_pem = string
    key_pem  = string
    ca_pem   = optional(string)
  })
  default   = null
  sensitive = true

}
