output "bucket_id" {
  description = "Name of the claim-check bucket (BRIDGE_CLAIM_CHECK_BUCKET; the consumers module's claim_check_bucket), or null when create is false."
  value       = module.bucket.bucket_id
}

output "bucket_arn" {
  description = "ARN of the claim-check bucket, or null when create is false."
  value       = module.bucket.bucket_arn
}

output "claim_checks_arn" {
  description = "ARN of the objects the workers write (<bucket ARN>/claim-checks/*): grant s3:GetObject on it to whoever reads claim-checked outputs. null when create is false."
  value       = module.bucket.bucket_arn == null ? null : "${module.bucket.bucket_arn}/${local.key_prefix}/*"
}

output "key_prefix" {
  description = "Key prefix of the claim checks (bridge.claim_check.DEFAULT_KEY_PREFIX), which the lifecycle rule expires."
  value       = local.key_prefix
}

output "kms_key_arn" {
  description = "KMS key of the bucket's default encryption, or null for SSE-S3 (AES256)."
  value       = var.kms_key_arn
}

output "expiration_days" {
  description = "Days after which a claim check expires."
  value       = var.expiration_days
}
