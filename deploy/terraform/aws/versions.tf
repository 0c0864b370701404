# Provider and Terraform versions. Only the AWS provider is used: Datadog is wired through
# the Datadog Agent on the Dispatch server (openmetrics check on /metrics) and its API for
# the dashboard (datadog.tf), so no Datadog provider is needed.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 6.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Project = "dispatch", Cluster = var.name }, var.tags)
  }
}
