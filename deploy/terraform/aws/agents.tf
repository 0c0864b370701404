# The Mesos agents that run the work: an autoscaling group sized by the queue
# (scaling.tf), each instance guarded against being removed while it runs tasks
# (files/agent-guard.sh and the termination lifecycle hook below).

resource "aws_launch_template" "agent" {
  name_prefix            = "${var.name}-agent-"
  image_id               = var.image_id
  instance_type          = var.agent_instance_type
  key_name               = var.ssh_key_name
  vpc_security_group_ids = [aws_security_group.cluster.id]
  user_data              = local.user_data["agent"]

  iam_instance_profile {
    arn = aws_iam_instance_profile.node.arn
  }

  metadata_options {
    http_tokens = "required"
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.agent_root_volume_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = "${var.name}-agent", Role = "mesos-agent" }
  }
}

resource "aws_autoscaling_group" "agents" {
  name                = local.agents_group
  min_size            = var.agent_min
  max_size            = var.agent_max
  desired_capacity    = var.client_count
  vpc_zone_identifier = aws_subnet.public[*].id
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.agent.id
    version = aws_launch_template.agent.latest_version
  }

  # Scale-in guard: a terminating agent waits here (Terminating:Wait) until
  # agent-guard.sh has drained it and completes the action. It heartbeats while tasks
  # run; default_result applies only if the instance stops answering.
  initial_lifecycle_hook {
    name                 = local.lifecycle_hook
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    heartbeat_timeout    = var.drain_timeout_seconds
    default_result       = "CONTINUE"
  }

  tag {
    key                 = "Name"
    value               = "${var.name}-agent"
    propagate_at_launch = true
  }

  lifecycle {
    # After the first apply the queue sets the size; a later apply must not reset it.
    ignore_changes = [desired_capacity]

    precondition {
      condition     = var.agent_min <= var.client_count && var.client_count <= var.agent_max
      error_message = "client_count must be between agent_min and agent_max."
    }
  }
}
