output "state_machine_arn" {
  description = "ARN of the state machine (BRIDGE_STATE_MACHINE_ARN); null when create is false."
  value       = try(aws_sfn_state_machine.this[0].arn, null)
}

output "state_machine_name" {
  description = "Name of the state machine."
  value       = try(aws_sfn_state_machine.this[0].name, null)
}

output "role_arn" {
  description = "ARN of the state machine's IAM role."
  value       = try(aws_iam_role.this[0].arn, null)
}

output "role_name" {
  description = "Name of the state machine's IAM role."
  value       = try(aws_iam_role.this[0].name, null)
}

output "log_group_name" {
  description = "Name of the CloudWatch log group receiving execution history events."
  value       = try(aws_cloudwatch_log_group.this[0].name, null)
}

output "log_group_arn" {
  description = "ARN of the CloudWatch log group receiving execution history events."
  value       = try(aws_cloudwatch_log_group.this[0].arn, null)
}

output "map_mode" {
  description = "Map mode the definition was rendered with (INLINE or DISTRIBUTED)."
  value       = var.map_mode
}

output "definition" {
  description = "Rendered Amazon States Language definition."
  value       = local.definition
}
