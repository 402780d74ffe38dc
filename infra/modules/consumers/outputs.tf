output "autoscaling_group_name" {
  description = "Name of the workers' Auto Scaling group."
  value       = aws_autoscaling_group.this.name
}

output "autoscaling_group_arn" {
  description = "ARN of the workers' Auto Scaling group."
  value       = aws_autoscaling_group.this.arn
}

output "lifecycle_hook_name" {
  description = "Name of the termination lifecycle hook (BRIDGE_LIFECYCLE_HOOK_NAME in worker.env)."
  value       = aws_autoscaling_lifecycle_hook.drain.name
}

output "launch_template_id" {
  description = "ID of the workers' launch template."
  value       = aws_launch_template.this.id
}

output "role_arn" {
  description = "ARN of the workers' instance role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the workers' instance role."
  value       = aws_iam_role.this.name
}

output "instance_profile_arn" {
  description = "ARN of the workers' instance profile."
  value       = aws_iam_instance_profile.this.arn
}

output "security_group_id" {
  description = "ID of the security group created by the module, or null when create_security_group is false."
  value       = one(aws_security_group.this[*].id)
}

output "scaling_policy_arn" {
  description = "ARN of the backlog-per-instance target tracking policy."
  value       = aws_autoscaling_policy.backlog_per_instance.arn
}

output "worker_environment" {
  description = "Environment written to /etc/callback-bridge/worker.env on each instance."
  value       = local.worker_env
}
