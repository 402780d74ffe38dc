output "state_machine_arn" {
  description = "ARN of the state machine (BRIDGE_STATE_MACHINE_ARN)."
  value       = aws_sfn_state_machine.this.arn
}

output "state_machine_name" {
  description = "Name of the state machine."
  value       = aws_sfn_state_machine.this.name
}

output "role_arn" {
  description = "ARN of the state machine's IAM role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the state machine's IAM role."
  value       = aws_iam_role.this.name
}

output "log_group_name" {
  description = "Name of the CloudWatch log group receiving execution history events."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the CloudWatch log group receiving execution history events."
  value       = aws_cloudwatch_log_group.this.arn
}

output "map_mode" {
  description = "Map mode the definition was rendered with (INLINE or DISTRIBUTED)."
  value       = var.map_mode
}

output "definition" {
  description = "Rendered Amazon States Language definition."
  value       = local.definition
}
