output "region" {
  description = "Region of the deployment (AWS_REGION / AWS_DEFAULT_REGION)."
  value       = var.region
}

output "jobs_queue_url" {
  description = "BRIDGE_JOBS_QUEUE_URL."
  value       = module.queues.jobs_queue_url
}

output "results_queue_url" {
  description = "BRIDGE_RESULTS_QUEUE_URL."
  value       = module.queues.results_queue_url
}

output "jobs_dlq_url" {
  description = "BRIDGE_JOBS_DLQ_URL."
  value       = module.queues.jobs_dlq_url
}

output "results_dlq_url" {
  description = "BRIDGE_RESULTS_DLQ_URL."
  value       = module.queues.results_dlq_url
}

output "jobs_archive_url" {
  description = "BRIDGE_JOBS_ARCHIVE_URL: the jobs dead-letter archive (callback-bridge dlq), or null without dead_letter_handling."
  value       = module.queues.jobs_archive_url
}

output "results_archive_url" {
  description = "BRIDGE_RESULTS_ARCHIVE_URL: the results dead-letter archive (callback-bridge dlq), or null without dead_letter_handling."
  value       = module.queues.results_archive_url
}

output "state_machine_arn" {
  description = "BRIDGE_STATE_MACHINE_ARN: start executions with {\"jobs\": [...]}."
  value       = module.state_machine.state_machine_arn
}

output "completion_function_name" {
  description = "Name of the completion Lambda function."
  value       = module.completion.function_name
}

output "dead_letter_function_name" {
  description = "Name of the dead-letter Lambda function, or null without dead_letter_handling."
  value       = module.dead_letter.function_name
}

output "autoscaling_group_name" {
  description = "Name of the workers' Auto Scaling group."
  value       = module.consumers.autoscaling_group_name
}

output "alarm_names" {
  description = "Names of the CloudWatch alarms."
  value       = module.alarms.alarm_names
}

output "bridge_environment" {
  description = "Environment variables pointing callback-bridge (CLI, worker, client) at this deployment; the archive URLs only with dead_letter_handling, the claim-check bucket only with claim_check, the fan-out bucket only with fanout."
  value = merge(
    {
      AWS_REGION               = var.region
      AWS_DEFAULT_REGION       = var.region
      BRIDGE_STATE_MACHINE_ARN = module.state_machine.state_machine_arn
      BRIDGE_JOBS_QUEUE_URL    = module.queues.jobs_queue_url
      BRIDGE_RESULTS_QUEUE_URL = module.queues.results_queue_url
      BRIDGE_JOBS_DLQ_URL      = module.queues.jobs_dlq_url
      BRIDGE_RESULTS_DLQ_URL   = module.queues.results_dlq_url
    },
    var.dead_letter_handling ? {
      BRIDGE_JOBS_ARCHIVE_URL    = module.queues.jobs_archive_url
      BRIDGE_RESULTS_ARCHIVE_URL = module.queues.results_archive_url
    } : {},
    var.claim_check ? {
      BRIDGE_CLAIM_CHECK_BUCKET = module.claim_check.bucket_id
    } : {},
    var.fanout ? {
      BRIDGE_FANOUT_BUCKET = module.fanout.bucket_id
    } : {},
  )
}

output "fanout_bucket" {
  description = "Fan-out bucket of large fan-outs (bridge config fanout_bucket, BRIDGE_FANOUT_BUCKET; callback-bridge run), or null without fanout. Whoever starts fan-outs needs s3:PutObject on fanout_items; whoever reads results s3:GetObject on fanout_results."
  value       = module.fanout.bucket_id
}

output "fanout_items" {
  description = "ARN of the fan-out job files (<bucket ARN>/items/*), or null without fanout."
  value       = module.fanout.items_arn
}

output "fanout_results" {
  description = "ARN of the fan-out result files (<bucket ARN>/results/*), or null without fanout."
  value       = module.fanout.results_arn
}

output "claim_check_bucket" {
  description = "Claim-check bucket for outputs too large for a result message (bridge config claim_check_bucket, BRIDGE_CLAIM_CHECK_BUCKET), or null without claim_check. Readers of claim-checked outputs need s3:GetObject on claim_check_objects."
  value       = module.claim_check.bucket_id
}

output "claim_check_objects" {
  description = "ARN of the claim-check objects (<bucket ARN>/claim-checks/*): grant s3:GetObject on it to whoever reads claim-checked outputs (bridge.claim_check.fetch). null without claim_check."
  value       = module.claim_check.claim_checks_arn
}
