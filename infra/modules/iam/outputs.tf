# Role outputs depend on the roles' policies, so that whatever uses a role (the
# function, the services) is created only once the role can do its work.

output "deployer_role_arn" {
  description = "Role of the deployer Lambda."
  value       = aws_iam_role.deployer.arn
  depends_on  = [aws_iam_role_policy.deployer, aws_iam_role_policy.deployer_runtime]
}

output "deployer_role_name" {
  description = "Name of the deployer Lambda's role (to attach its failure-destination permission)."
  value       = aws_iam_role.deployer.name
}

output "agent_execution_role_arn" {
  description = "Execution role of every agent task (TEMPOVOICE_EXECUTION_ROLE_ARN)."
  value       = aws_iam_role.agent_execution.arn
  depends_on  = [aws_iam_role_policy.agent_execution]
}

output "agent_boundary_policy_arn" {
  description = "Permission boundary of every agent's task role (TEMPOVOICE_TASK_ROLE_BOUNDARY_ARN)."
  value       = aws_iam_policy.agent_boundary.arn
}

output "control_plane_task_role_arn" {
  description = "Task role of the control plane."
  value       = aws_iam_role.control_plane_task.arn
  depends_on  = [aws_iam_role_policy.control_plane_task]
}

output "control_plane_execution_role_arn" {
  description = "Execution role of the control plane."
  value       = aws_iam_role.control_plane_execution.arn
  depends_on  = [aws_iam_role_policy.control_plane_execution]
}

output "github_deploy_role_arn" {
  description = "Role GitHub Actions assumes to release (the role-to-assume of aws-actions/configure-aws-credentials)."
  value       = aws_iam_role.github_deploy.arn
  depends_on  = [aws_iam_role_policy.github_deploy]
}
