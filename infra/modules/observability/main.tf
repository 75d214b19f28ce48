# observability: the platform's CloudWatch alarms and dashboard, and the topic the
# alarms notify.
#
# Sources:
#   - the agent ALBs (AWS/ApplicationELB): 5xx from the load balancer and from
#     targets, and target response time, per ALB;
#   - the control plane's target group on ALB 0: its 5xx;
#   - the deployer Lambda (AWS/Lambda): errors, and duration near its timeout;
#   - the agent runtimes' embedded-metric-format lines (namespace TempoVoice,
#     dimension AgentId; docs/runtime.md): LiveCalls, CallsEnded, BusyRejects,
#     ProviderErrors, UploadFailures. Agents come and go, so their alarms are over all
#     agents at once (CloudWatch Metrics Insights: SUM over the TempoVoice schema);
#     the dashboard breaks them down per agent.
# What each alarm means, and what to do, is in docs/deploy.md ("Alarms").

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  account = data.aws_caller_identity.current.account_id
  region  = data.aws_region.current.name
  # Metrics Insights over every agent's EMF metrics.
  all_agents = "FROM SCHEMA(\"TempoVoice\", AgentId)"
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.prefix}-alarms"
  kms_master_key_id = var.kms_key_arn
}

# CloudWatch publishes alarm notifications as a service; only this account's alarms.
resource "aws_sns_topic_policy" "alarms" {
  arn = aws_sns_topic.alarms.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "CloudWatchAlarmsOfThisAccount"
      Effect    = "Allow"
      Principal = { Service = "cloudwatch.amazonaws.com" }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.alarms.arn
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account }
        ArnLike      = { "aws:SourceArn" = "arn:*:cloudwatch:${local.region}:${local.account}:alarm:${var.prefix}-*" }
      }
    }]
  })
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

# --- agent ALBs ----------------------------------------------------------------------

locals {
  # Each agent ALB's alarms: metric, statistic, threshold and what firing means.
  alb_alarm_kinds = {
    "5xx" = {
      metric = "HTTPCode_ELB_5XX_Count", statistic = "Sum", threshold = 5
      means  = "answered 5xx itself (no healthy target, a target that closed the connection): callers get no answer"
    }
    "target-5xx" = {
      metric = "HTTPCode_Target_5XX_Count", statistic = "Sum", threshold = 5
      means  = "had its agent runtimes answer 5xx (a failing webhook: Twilio plays its error message)"
    }
    "response-time" = {
      metric = "TargetResponseTime", statistic = "Average", threshold = var.target_response_time_secs
      means  = "had webhooks answer slowly on average: Twilio waits before the call connects"
    }
  }
  alb_alarms = {
    for pair in setproduct(range(length(var.alb_arn_suffixes)), keys(local.alb_alarm_kinds)) :
    "alb${pair[0]}-${pair[1]}" => merge(local.alb_alarm_kinds[pair[1]], { alb = pair[0] })
  }
}

resource "aws_cloudwatch_metric_alarm" "alb" {
  for_each            = local.alb_alarms
  alarm_name          = "${var.prefix}-${each.key}"
  alarm_description   = "Agent ALB ${each.value.alb} ${each.value.means}. docs/deploy.md#alarms"
  namespace           = "AWS/ApplicationELB"
  metric_name         = each.value.metric
  dimensions          = { LoadBalancer = var.alb_arn_suffixes[each.value.alb] }
  statistic           = each.value.statistic
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# --- control plane ---------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "control_plane_5xx" {
  alarm_name          = "${var.prefix}-control-plane-5xx"
  alarm_description   = "The control plane answered 5xx (its database, the deployer or S3 failing): the dashboard and API fail for tenants. docs/deploy.md#alarms"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_5XX_Count"
  dimensions          = { LoadBalancer = var.alb_arn_suffixes[0], TargetGroup = var.control_plane_target_group_arn_suffix }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 5
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# --- deployer ------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "deployer_errors" {
  alarm_name          = "${var.prefix}-deployer-errors"
  alarm_description   = "The deployer Lambda failed (an error it did not report as an outcome, or a timeout): deployments are retried, rollouts from CI fail. docs/deploy.md#alarms"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.deployer_function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "deployer_duration" {
  alarm_name          = "${var.prefix}-deployer-duration"
  alarm_description   = "A deployer invocation ran past 80 % of its timeout: a rollout of many agents, or AWS slow; the next may time out. docs/deploy.md#alarms"
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = { FunctionName = var.deployer_function_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.deployer_timeout_secs * 1000 * 0.8
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# --- agents (EMF) -----------------------------------------------------------------------

locals {
  # Alarms over every agent's EMF metric: threshold, minutes of 60 s looked at, how many
  # of them breaching, and what firing means.
  agent_alarms = {
    "busy-rejects" = {
      metric = "BusyRejects", threshold = 0, periods = 3, breaching = 2
      means  = "Agent tasks refused calls at their limit (callers heard busy): an agent needs more tasks (sizing, autoscaling) or TEMPOVOICE_MAX_CALLS is low. The dashboard names the agent."
    }
    "provider-errors" = {
      metric = "ProviderErrors", threshold = 2, periods = 3, breaching = 2
      means  = "Calls lost their speech provider (Nova Sonic or OpenAI unavailable or failing; callers heard the apology): check the provider's status and the agents' credentials."
    }
    "upload-failures" = {
      metric = "UploadFailures", threshold = 0, periods = 5, breaching = 3
      means  = "Agent runtimes could not upload call artifacts to S3; they are spooled on the task's disk and retried, and lost if the task stops first."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "agents" {
  for_each            = local.agent_alarms
  alarm_name          = "${var.prefix}-${each.key}"
  alarm_description   = "${each.value.means} docs/deploy.md#alarms"
  evaluation_periods  = each.value.periods
  datapoints_to_alarm = each.value.breaching
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "total"
    expression  = "SELECT SUM(${each.value.metric}) ${local.all_agents}"
    period      = 60
    return_data = true
  }
}

# --- dashboard ---------------------------------------------------------------------------

resource "aws_cloudwatch_dashboard" "platform" {
  dashboard_name = "${var.prefix}-platform"
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title = "Calls in progress (all agents, and the busiest)", region = local.region, view = "timeSeries", stat = "Sum", period = 60
          metrics = [
            [{ expression = "SELECT SUM(LiveCalls) ${local.all_agents}", id = "live", label = "all agents" }],
            [{ expression = "SELECT SUM(LiveCalls) ${local.all_agents} GROUP BY AgentId ORDER BY SUM() DESC LIMIT 10", id = "top", label = "" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title = "Calls ended per minute", region = local.region, view = "timeSeries", stat = "Sum", period = 60
          metrics = [[{ expression = "SELECT SUM(CallsEnded) ${local.all_agents}", id = "ended", label = "calls ended" }]]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title = "Busy rejects, by agent", region = local.region, view = "timeSeries", stat = "Sum", period = 60
          metrics = [[{ expression = "SELECT SUM(BusyRejects) ${local.all_agents} GROUP BY AgentId ORDER BY SUM() DESC LIMIT 10", id = "rejects", label = "" }]]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title = "Provider errors and upload failures", region = local.region, view = "timeSeries", stat = "Sum", period = 60
          metrics = [
            [{ expression = "SELECT SUM(ProviderErrors) ${local.all_agents}", id = "provider", label = "provider errors" }],
            [{ expression = "SELECT SUM(UploadFailures) ${local.all_agents}", id = "uploads", label = "upload failures" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title = "Webhook latency and 5xx (agent ALBs)", region = local.region, view = "timeSeries", period = 60
          metrics = concat(
            [for i, a in var.alb_arn_suffixes : ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", a, { stat = "p99", label = "p99 response, ALB ${i}" }]],
            [for i, a in var.alb_arn_suffixes : ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", a, { stat = "Sum", yAxis = "right", label = "target 5xx, ALB ${i}" }]],
          )
        }
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = {
          title = "Deployments (the deployer Lambda)", region = local.region, view = "timeSeries", period = 300
          metrics = [
            ["AWS/Lambda", "Invocations", "FunctionName", var.deployer_function_name, { stat = "Sum", label = "invocations" }],
            ["AWS/Lambda", "Errors", "FunctionName", var.deployer_function_name, { stat = "Sum", label = "errors" }],
            ["AWS/Lambda", "Duration", "FunctionName", var.deployer_function_name, { stat = "Maximum", yAxis = "right", label = "longest (ms)" }],
          ]
        }
      },
      {
        type = "alarm", x = 0, y = 18, width = 24, height = 3
        properties = {
          title = "Alarms"
          alarms = concat(
            [for a in aws_cloudwatch_metric_alarm.alb : a.arn],
            [for a in aws_cloudwatch_metric_alarm.agents : a.arn],
            [
              aws_cloudwatch_metric_alarm.control_plane_5xx.arn,
              aws_cloudwatch_metric_alarm.deployer_errors.arn,
              aws_cloudwatch_metric_alarm.deployer_duration.arn,
            ],
          )
        }
      },
    ]
  })
}
