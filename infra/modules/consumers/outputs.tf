output "autoscaling_group_name" {
  description = "Name of the workers' Auto Scaling group."
  value       = try(aws_autoscaling_group.this[0].name, null)
}

output "autoscaling_group_arn" {
  description = "ARN of the workers' Auto Scaling group."
  value       = try(aws_autoscaling_group.this[0].arn, null)
}

output "lifecycle_hook_name" {
  description = "Name of the termination lifecycle hook (BRIDGE_LIFECYCLE_HOOK_NAME in worker.env)."
  value       = try(aws_autoscaling_lifecycle_hook.drain[0].name, null)
}

output "launch_template_id" {
  description = "ID of the workers' launch template."
  value       = try(aws_launch_template.this[0].id, null)
}

output "role_arn" {
  description = "ARN of the workers' instance role."
  value       = local.create ? local.iam_role_arn : null
}

output "role_name" {
  description = "Name of the workers' instance role."
  value       = local.create && local.iam_role_name != "" ? local.iam_role_name : null
}

output "instance_profile_arn" {
  description = "ARN of the workers' instance profile."
  value       = try(aws_iam_instance_profile.this[0].arn, null)
}

output "security_group_id" {
  description = "ID of the security group created by the module, or null when create_security_group is false."
  value       = one(aws_security_group.this[*].id)
}

output "scaling_policy_arn" {
  description = "ARN of the backlog-per-slot target tracking policy."
  value       = try(aws_autoscaling_policy.backlog_per_instance[0].arn, null)
}

output "worker_environment" {
  description = "Environment written to /etc/callback-bridge/worker.env on each instance."
  value       = local.worker_env
}
