# edge: the internet-facing load balancers agents are placed on.
#
# `shard_count` ALBs, `{prefix}-agents-{n}` (n from 0). An ALB takes at most 100
# target groups, one per agent, so the fleet is spread over several; the control
# plane places each agent on one listener (TEMPOVOICE_LISTENERS, the
# `listeners_setting` output) and the deployer adds the agent's rule and target
# group there. The deployer's policy allows CreateRule only on listeners of load
# balancers named `{prefix}-…` (policies/deployer.json), hence the names.
#
# Each ALB:
#   - HTTPS:443 with `certificate_arn` (it must cover that ALB's agent host, and the
#     control plane's host on ALB 0), TLS 1.3 + 1.2 policy; default action a fixed
#     404: only agent rules (`/agent/{id}/*`, priorities from 1001) and the control
#     plane's host rule route anywhere;
#   - HTTP:80 answering a 301 to HTTPS, nothing else;
#   - idle timeout `idle_timeout` (default 3600 s): the ALB closes a connection
#     nothing was sent on for that long. Twilio's Media Streams WebSocket carries
#     audio every 20 ms while a call streams, but a stream can go quiet (a call on
#     hold, a paused or one-way stream), and the ALB cutting it ends the call's audio.
#     3600 s is the longest call the control plane accepts (max_session_duration_secs
#     is capped at 3600, like the target groups' deregistration delay), so the load
#     balancer is never what ends a call. The cost is idle client keep-alive
#     connections held longer, which count as active connections in LCUs;
#   - invalid header fields dropped (request smuggling), desync mitigation defensive;
#   - access logs when a bucket is given (it must allow ELB log delivery and use
#     SSE-S3: ALB access logs cannot be written with a KMS key).
#
# Optional WAFv2 web ACL on all ALBs: AWS managed common rule set, known bad inputs,
# IP reputation, and a per-IP rate limit. Its logs go to CloudWatch
# (`aws-waf-logs-{prefix}`, the name WAF requires) with the API key and session
# cookie redacted.
#
# Security groups: the ALBs take 443 and 80 from anywhere (IPv4, and IPv6 once the
# ALBs are made dualstack: today they are IPv4 like the VPC); agent
# tasks take the container port from the ALBs only, and may open HTTPS connections
# anywhere (Twilio, speech providers, webhooks, AWS APIs). The deployer attaches the
# agent group to every agent task (TEMPOVOICE_SECURITY_GROUPS).

# --- security groups ----------------------------------------------------------------

resource "aws_security_group" "alb" {
  name        = "${var.prefix}-agents-alb"
  description = "TempoVoice agent load balancers: HTTPS (and HTTP for the redirect) from the internet"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.prefix}-agents-alb" }
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(["0.0.0.0/0", "::/0"])

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from Twilio and operators"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  for_each = toset(["0.0.0.0/0", "::/0"])

  security_group_id = aws_security_group.alb.id
  description       = "HTTP from anywhere, redirected to HTTPS"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null
}

resource "aws_vpc_security_group_egress_rule" "alb_to_agents" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To agent tasks on the runtime port"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = aws_security_group.agents.id
}

resource "aws_security_group" "agents" {
  #checkov:skip=CKV2_AWS_5:Attached at runtime, not by Terraform: the deployer puts every agent task in this group (TEMPOVOICE_SECURITY_GROUPS).
  name        = "${var.prefix}-agents"
  description = "TempoVoice agent tasks: runtime port from the ALBs, HTTPS out"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.prefix}-agents" }
}

resource "aws_vpc_security_group_ingress_rule" "agents_from_alb" {
  security_group_id            = aws_security_group.agents.id
  description                  = "Runtime port from the agent load balancers"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "agents_https" {
  for_each = toset(["0.0.0.0/0", "::/0"])

  security_group_id = aws_security_group.agents.id
  description       = "HTTPS to Twilio, speech providers, webhooks and AWS APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null
}

# --- load balancers -----------------------------------------------------------------

resource "aws_lb" "agents" {
  count = var.shard_count

  #checkov:skip=CKV2_AWS_76:Log4j exploits are blocked by AWSManagedRulesKnownBadInputsRuleSet, which the web ACL has; the check also demands AWSManagedRulesAnonymousIpList, whose HostingProviderIPList matches cloud-hosted senders such as Twilio's webhooks and would drop calls.

  name               = "${var.prefix}-agents-${count.index}"
  load_balancer_type = "application"
  internal           = false # Twilio must reach the agents from the internet
  ip_address_type    = "ipv4"
  subnets            = var.public_subnet_ids
  security_groups    = [aws_security_group.alb.id]

  idle_timeout               = var.idle_timeout
  drop_invalid_header_fields = true
  desync_mitigation_mode     = "defensive"
  enable_http2               = true
  enable_deletion_protection = var.deletion_protection

  dynamic "access_logs" {
    for_each = var.access_logs_bucket == null ? [] : [var.access_logs_bucket]

    content {
      bucket  = access_logs.value
      prefix  = "${var.prefix}-agents-${count.index}"
      enabled = true
    }
  }

  tags = { Name = "${var.prefix}-agents-${count.index}" }

  lifecycle {
    precondition {
      condition     = length(var.agent_hosts) == var.shard_count
      error_message = "agent_hosts must name exactly one public host per ALB (shard_count = ${var.shard_count}, ${length(var.agent_hosts)} hosts given)."
    }
  }
}

resource "aws_lb_listener" "https" {
  count = var.shard_count

  load_balancer_arn = aws_lb.agents[count.index].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type = "fixed-response"

    fixed_response {
      content_type = "text/plain"
      message_body = "no such agent"
      status_code  = "404"
    }
  }
}

resource "aws_lb_listener" "http" {
  count = var.shard_count

  load_balancer_arn = aws_lb.agents[count.index].arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

# --- DNS ----------------------------------------------------------------------------

resource "aws_route53_record" "agents" {
  count = var.route53_zone_id == null ? 0 : var.shard_count

  zone_id = var.route53_zone_id
  name    = var.agent_hosts[count.index]
  type    = "A"

  alias {
    name                   = aws_lb.agents[count.index].dns_name
    zone_id                = aws_lb.agents[count.index].zone_id
    evaluate_target_health = false
  }
}

# --- WAF ----------------------------------------------------------------------------

resource "aws_wafv2_web_acl" "agents" {
  count = var.enable_waf ? 1 : 0

  name        = "${var.prefix}-agents"
  description = "TempoVoice agent and control plane load balancers"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "aws-common"
    priority = 10

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"

        # SizeRestrictions_BODY blocks bodies over 8 KB. Twilio's webhook POSTs are
        # form-encoded and grow with the call's parameters (speech results, custom
        # parameters, SIP headers) past that; blocking them drops calls. Counted
        # instead, so it still shows in metrics and logs. The runtime checks every
        # webhook's X-Twilio-Signature itself.
        rule_action_override {
          name = "SizeRestrictions_BODY"

          action_to_use {
            count {}
          }
        }

        # Machine clients are not bound to send a User-Agent; Twilio documents none
        # for its Media Streams WebSocket upgrade, and blocking that request would
        # leave a connected call without audio. Counted, not blocked.
        rule_action_override {
          name = "NoUserAgent_HEADER"

          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.prefix}-aws-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-known-bad-inputs"
    priority = 20

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.prefix}-aws-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-ip-reputation"
    priority = 30

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAmazonIpReputationList"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.prefix}-aws-ip-reputation"
      sampled_requests_enabled   = true
    }
  }

  # Per source IP, over WAF's 5-minute window. Twilio sends every call's webhooks
  # and stream upgrades from a small pool of its own addresses, so the limit must
  # stay well above the whole fleet's call rate (waf_rate_limit).
  rule {
    name     = "rate-limit-per-ip"
    priority = 40

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.prefix}-rate-limit-per-ip"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.prefix}-agents"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "agents" {
  count = var.enable_waf ? var.shard_count : 0

  resource_arn = aws_lb.agents[count.index].arn
  web_acl_arn  = aws_wafv2_web_acl.agents[0].arn
}

resource "aws_cloudwatch_log_group" "waf" {
  count = var.enable_waf ? 1 : 0

  # WAF only logs to log groups whose name starts with aws-waf-logs-.
  name              = "aws-waf-logs-${var.prefix}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_wafv2_web_acl_logging_configuration" "agents" {
  count = var.enable_waf ? 1 : 0

  resource_arn            = aws_wafv2_web_acl.agents[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]

  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  redacted_fields {
    single_header {
      name = "cookie"
    }
  }
}
