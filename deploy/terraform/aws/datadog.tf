# Datadog, without the Datadog provider: the Datadog Agent on the Dispatch server sends
# the queue metrics (the openmetrics check of deploy/datadog scrapes /metrics; set up by
# files/node-setup.sh with the API key from Parameter Store), and the shipped dashboard
# (deploy/datadog/dashboard.json) is imported through Datadog's API by curl on the
# machine running terraform, when an application key is given too. A changed dashboard
# file is imported again as a new dashboard (delete the old one by hand).

locals {
  datadog_enabled        = nonsensitive(var.datadog_api_key != "")
  datadog_dashboard      = local.datadog_enabled && nonsensitive(var.datadog_app_key != "")
  datadog_dashboard_file = abspath("${path.module}/../../datadog/dashboard.json")
}

resource "terraform_data" "datadog_dashboard" {
  count = local.datadog_dashboard ? 1 : 0

  triggers_replace = [filesha256(local.datadog_dashboard_file), var.datadog_site]

  provisioner "local-exec" {
    # Keys travel in the environment, not on the command line.
    command = "curl -fsS -o /dev/null -X POST \"https://api.$DD_SITE/api/v1/dashboard\" -H 'Content-Type: application/json' -H \"DD-API-KEY: $DD_API_KEY\" -H \"DD-APPLICATION-KEY: $DD_APP_KEY\" --data-binary @\"$DASHBOARD\""
    environment = {
      DD_SITE    = var.datadog_site
      DD_API_KEY = var.datadog_api_key
      DD_APP_KEY = var.datadog_app_key
      DASHBOARD  = local.datadog_dashboard_file
    }
  }
}
