output "bucket_id" {
  description = "Name of the fan-out bucket (BRIDGE_FANOUT_BUCKET; callback-bridge run --bucket), or null when create is false."
  value       = module.bucket.bucket_id
}

output "bucket_arn" {
  description = "ARN of the fan-out bucket (the state_machine module's fanout_bucket_arn), or null when create is false."
  value       = module.bucket.bucket_arn
}

output "items_arn" {
  description = "ARN of the job files (<bucket ARN>/items/*): grant s3:PutObject on it to whoever starts fan-outs (callback-bridge run). null when create is false."
  value       = module.bucket.bucket_arn == null ? null : "${module.bucket.bucket_arn}/${local.items_prefix}/*"
}

output "results_arn" {
  description = "ARN of the result files (<bucket ARN>/results/*): grant s3:GetObject on it to whoever reads fan-out results. null when create is false."
  value       = module.bucket.bucket_arn == null ? null : "${module.bucket.bucket_arn}/${local.results_prefix}/*"
}

output "kms_key_arn" {
  description = "KMS key of the bucket's default encryption, or null for SSE-S3 (AES256)."
  value       = var.kms_key_arn
}

output "expiration_days" {
  description = "Days after which job and result files expire."
  value       = var.expiration_days
}
