output "alb_arns" {
  description = "ARNs of the agent ALBs, by index."
  value       = aws_lb.agents[*].arn
}

output "alb_dns_names" {
  description = "DNS names of the agent ALBs, by index."
  value       = aws_lb.agents[*].dns_name
}

output "alb_zone_ids" {
  description = "Canonical hosted zone IDs of the agent ALBs (for alias records), by index."
  value       = aws_lb.agents[*].zone_id
}

output "https_listener_arns" {
  description = "HTTPS listener ARNs, by ALB index."
  value       = aws_lb_listener.https[*].arn
}

output "listeners_setting" {
  description = "TEMPOVOICE_LISTENERS for the control plane: listenerArn=capacity@publicHost, comma-separated."
  value       = join(",", [for i, l in aws_lb_listener.https : "${l.arn}=${var.listener_capacity}@${var.agent_hosts[i]}"])
}

output "alb_security_group_id" {
  description = "Security group of the ALBs."
  value       = aws_security_group.alb.id
}

output "agent_security_group_id" {
  description = "Security group of agent tasks (TEMPOVOICE_SECURITY_GROUPS)."
  value       = aws_security_group.agents.id
}

output "alb_arn_suffixes" {
  description = "ARN suffixes of the agent ALBs (their CloudWatch LoadBalancer dimension), by index."
  value       = aws_lb.agents[*].arn_suffix
}
