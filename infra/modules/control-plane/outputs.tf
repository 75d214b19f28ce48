output "service_name" {
  description = "Name of the control plane's ECS service."
  value       = aws_ecs_service.this.name
}

output "task_definition_family" {
  description = "Task definition family the release workflow registers new revisions in."
  value       = aws_ecs_task_definition.this.family
}

output "url" {
  description = "Public URL of the API and dashboard."
  value       = "https://${var.control_plane_host}"
}

output "settings" {
  description = "The container's plain environment, by variable name."
  value       = local.environment
}

output "secret_arns" {
  description = "Secrets injected into the container, by variable name."
  value       = local.secrets
}

output "security_group_id" {
  description = "Security group of the control plane's tasks."
  value       = aws_security_group.tasks.id
}

output "database_endpoint" {
  description = "Address and port of the database."
  value       = "${aws_db_instance.this.address}:${aws_db_instance.this.port}"
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the control plane's target group (its CloudWatch TargetGroup dimension)."
  value       = aws_lb_target_group.this.arn_suffix
}
