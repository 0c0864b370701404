# Secrets go to SSM Parameter Store (SecureString, /<name>/...), never into user data,
# which anyone allowed to describe instances can read. Nodes read them with their role
# (iam.tf). Terraform state still holds them: keep the state private.

resource "aws_ssm_parameter" "datadog_api_key" {
  count = local.datadog_enabled ? 1 : 0

  name        = "/${var.name}/datadog_api_key"
  description = "Datadog API key of the Dispatch server's Datadog Agent"
  type        = "SecureString"
  value       = var.datadog_api_key
}

resource "aws_ssm_parameter" "grafana_admin_password" {
  count = local.grafana_password_set ? 1 : 0

  name        = "/${var.name}/grafana_admin_password"
  description = "Password of Grafana's admin user on the Dispatch server"
  type        = "SecureString"
  value       = var.grafana_admin_password
}

locals {
  # Whether a secret is set is not itself secret (count and for_each need to know).
  grafana_password_set = nonsensitive(var.grafana_admin_password != "")
  tls_enabled          = nonsensitive(var.dispatch_tls != null)
  tls_ca_set           = nonsensitive(try(var.dispatch_tls.ca_pem, null) != null)
  tls_files = local.tls_enabled ? {
    tls_cert = var.dispatch_tls.cert_pem
    tls_key  = var.dispatch_tls.key_pem
    tls_ca   = local.tls_ca_set ? var.dispatch_tls.ca_pem : null
  } : {}
}

resource "aws_ssm_parameter" "tls" {
  for_each = toset([for k in ["tls_cert", "tls_key", "tls_ca"] : k if local.tls_enabled && (k != "tls_ca" || local.tls_ca_set)])

  name        = "/${var.name}/${each.key}"
  description = "TLS material of the Dispatch API"
  type        = "SecureString"
  value       = local.tls_files[each.key]
}
