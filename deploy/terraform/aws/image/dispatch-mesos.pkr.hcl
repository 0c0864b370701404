# The machine image every node of the cluster boots: Debian 12 with Apache Mesos built
# from Apache's source, ZooKeeper, Docker, ffmpeg, the AWS CLI, Dispatch built from this
# checkout and installed with scripts/install.sh, Prometheus and Grafana; everything
# disabled until the node's user data enables its role (files/node-setup.sh).
#
#   cd deploy/terraform/aws/image
#   packer init . && packer build .        # about an hour, mostly the Mesos build
#   -> image_id = "ami-..." in terraform.tfvars
#
# Why an image: no Linux distribution ships Mesos packages any more and Apache publishes
# source only. The official Docker images are old CentOS 7 builds, and an agent in a
# container runs its tasks inside that container (ffmpeg would have to be in it) with
# privileged Docker plumbing; building Mesos at boot takes an hour, far too slow for an
# agent the queue asked for. Built once here, an agent boots in about a minute.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "region" {
  description = "Region to build the image in (use the cluster's)."
  type        = string
  default     = "us-east-1"
}

variable "instance_type" {
  description = "Builder instance: more cores build Mesos faster."
  type        = string
  default     = "c6i.4xlarge"
}

variable "mesos_version" {
  description = "Apache Mesos release to build (deploy/mesos/build-mesos.sh)."
  type        = string
  default     = "1.11.0"
}

variable "mesos_git_ref" {
  description = "Build this ref of github.com/apache/mesos instead of the release (e.g. master)."
  type        = string
  default     = ""
}

locals {
  stamp = formatdate("YYYYMMDDhhmmss", timestamp())
  repo  = abspath("${path.root}/../../../..")
}

source "amazon-ebs" "debian" {
  region        = var.region
  instance_type = var.instance_type
  ssh_username  = "admin"
  ami_name      = "dispatch-mesos-${local.stamp}"

  source_ami_filter {
    owners      = ["136693071363"] # Debian
    most_recent = true
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 40
    volume_type           = "gp3"
    delete_on_termination = true
  }

  tags = {
    Name         = "dispatch-mesos"
    MesosVersion = var.mesos_git_ref != "" ? var.mesos_git_ref : var.mesos_version
  }
}

build {
  sources = ["source.amazon-ebs.debian"]

  # The checkout as committed (no build output).
  provisioner "shell-local" {
    inline = ["git -C '${local.repo}' archive --format=tar.gz -o '${path.root}/dispatch-src.tar.gz' HEAD"]
  }

  provisioner "file" {
    source      = "${path.root}/dispatch-src.tar.gz"
    destination = "/tmp/dispatch-src.tar.gz"
  }

  provisioner "shell" {
    script          = "${path.root}/build-image.sh"
    execute_command = "sudo -E bash '{{ .Path }}'"
    timeout         = "3h"
    environment_vars = [
      "MESOS_VERSION=${var.mesos_version}",
      "MESOS_GIT_REF=${var.mesos_git_ref}",
    ]
  }
}
