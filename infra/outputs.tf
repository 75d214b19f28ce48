output "control_plane_settings" {
  description = "The control plane container's environment (control-plane/src/settings.rs), by variable name; its secrets are in control_plane_secret_arns."
  value       = module.control_plane.settings
}

output "control_plane_secret_arns" {
  description = "Secrets Manager secrets injected into the control plane container, by variable name."
  value       = module.control_plane.secret_arns
}

output "deployer_settings" {
  description = "The deployer Lambda's environment (deployer-lambda/src/settings.rs), by variable name."
  value       = module.deployer.settings
}

output "listeners_setting" {
  description = "TEMPOVOICE_LISTENERS: listenerArn=capacity@publicHost per ALB, comma-separated."
  value       = module.edge.listeners_setting
}

output "agent_hosts" {
  description = "Public host of each agent ALB, in ALB order (point their DNS at alb_dns_names)."
  value       = var.agent_hosts
}

output "alb_dns_names" {
  description = "DNS names of the agent ALBs, in ALB order (ALB 0 also serves control_plane_host)."
  value       = module.edge.alb_dns_names
}

output "control_plane_url" {
  description = "URL of the control plane's API and dashboard."
  value       = module.control_plane.url

  precondition {
    condition     = !contains(var.agent_hosts, var.control_plane_host)
    error_message = "control_plane_host must differ from every agent host: on ALB 0 its host rule would take the agents' traffic."
  }
}

output "ecr_repositories" {
  description = "ECR repository URLs CI pushes to: agent_runtime, control_plane."
  value       = module.registry.repository_urls
}

output "deployer_function_name" {
  description = "Name of the deployer Lambda (DEPLOYER_LAMBDA_FUNCTION; CI updates its code and invokes rollout)."
  value       = module.deployer.function_name
}

output "github_deploy_role_arn" {
  description = "Role the GitHub release workflow assumes through OIDC."
  value       = module.iam.github_deploy_role_arn
}

output "ecs_cluster_name" {
  description = "ECS cluster of the agents and the control plane."
  value       = module.cluster.cluster_name
}

output "control_plane_service_name" {
  description = "ECS service the release workflow rolls onto each new control plane image."
  value       = module.control_plane.service_name
}

output "control_plane_task_definition_family" {
  description = "Task definition family the release workflow copies (latest revision) with the new image."
  value       = module.control_plane.task_definition_family
}

output "nat_public_ips" {
  description = "Public IPs agents' and the control plane's egress leaves from."
  value       = module.network.nat_public_ips
}

output "alarm_topic_arn" {
  description = "SNS topic the platform's CloudWatch alarms notify (docs/deploy.md#alarms)."
  value       = module.observability.alarm_topic_arn
}

output "dashboard_name" {
  description = "The platform's CloudWatch dashboard: calls, rejects, provider errors, webhook latency, deployments."
  value       = module.observability.dashboard_name
}
