# Autoscaling from the queue. The Dispatch server publishes, every minute, what its
# /metrics says is waiting (files/queue-metrics.sh, namespace Dispatch, dimension
# Cluster):
#   AgentsWanted = ceil(max(pending cpus / agent vCPUs, pending memory / agent memory))
#   AgentsIdle   = whole agents' worth of idle CPUs on the Mesos master, when nothing waits
# Scale out: AgentsWanted >= 1 for scale_out_evaluation_minutes adds agents in steps (1,
# 2, 4, 8 as the shortfall grows); agents still warming up count, so a backlog that lasts
# while they boot does not add more. Scale in: AgentsIdle >= 1 for scale_in_idle_minutes
# removes one agent at a time. Never below agent_min or above agent_max.
#
# The guard that keeps running tasks alive: busy agents are protected from scale-in, and
# a terminating agent is drained first (agents.tf, files/agent-guard.sh).

locals {
  metric_dimensions = { Cluster = var.name }
}

resource "aws_autoscaling_policy" "scale_out" {
  name                      = "${var.name}-queue-scale-out"
  autoscaling_group_name    = aws_autoscaling_group.agents.name
  policy_type               = "StepScaling"
  adjustment_type           = "ChangeInCapacity"
  metric_aggregation_type   = "Maximum"
  estimated_instance_warmup = var.agent_warmup_seconds

  # Bounds are relative to the alarm threshold (1 agent wanted).
  step_adjustment {
    metric_interval_lower_bound = 0
    metric_interval_upper_bound = 1
    scaling_adjustment          = 1
  }
  step_adjustment {
    metric_interval_lower_bound = 1
    metric_interval_upper_bound = 3
    scaling_adjustment          = 2
  }
  step_adjustment {
    metric_interval_lower_bound = 3
    metric_interval_upper_bound = 7
    scaling_adjustment          = 4
  }
  step_adjustment {
    metric_interval_lower_bound = 7
    scaling_adjustment          = 8
  }
}

resource "aws_cloudwatch_metric_alarm" "queue_backlog" {
  alarm_name          = "${var.name}-queue-backlog"
  alarm_description   = "Dispatch has pending work no agent has room for: add agents"
  namespace           = local.metric_namespace
  metric_name         = "AgentsWanted"
  dimensions          = local.metric_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = var.scale_out_evaluation_minutes
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  # No data (the server is down or starting): do nothing.
  treat_missing_data = "notBreaching"
  alarm_actions      = [aws_autoscaling_policy.scale_out.arn]
}

resource "aws_autoscaling_policy" "scale_in" {
  name                   = "${var.name}-queue-scale-in"
  autoscaling_group_name = aws_autoscaling_group.agents.name
  policy_type            = "SimpleScaling"
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = -1
  cooldown               = 300
}

resource "aws_cloudwatch_metric_alarm" "idle_agents" {
  alarm_name          = "${var.name}-idle-agents"
  alarm_description   = "Nothing pending and an agent's worth of CPUs idle: remove one agent"
  namespace           = local.metric_namespace
  metric_name         = "AgentsIdle"
  dimensions          = local.metric_dimensions
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = var.scale_in_idle_minutes
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_autoscaling_policy.scale_in.arn]
}
