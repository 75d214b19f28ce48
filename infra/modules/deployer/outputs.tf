output "function_name" {
  description = "Name of the deployer function (DEPLOYER_LAMBDA_FUNCTION)."
  value       = aws_lambda_function.deployer.function_name
}

output "function_arn" {
  description = "ARN of the deployer function."
  value       = aws_lambda_function.deployer.arn
}

output "settings" {
  description = "The function's environment: every deployer setting, by variable name."
  value       = local.environment
}

output "failure_queue_url" {
  description = "URL of the queue failed asynchronous invocations land in (null when disabled)."
  value       = try(aws_sqs_queue.failures[0].url, null)
}

output "timeout_secs" {
  description = "The function's timeout, in seconds."
  value       = aws_lambda_function.deployer.timeout
}
