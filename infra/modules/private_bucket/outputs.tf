output "bucket_id" {
  description = "Name of the bucket (known at plan time with a fixed name, after apply with use_name_prefix), or null when create is false."
  value       = try(aws_s3_bucket.this[0].bucket, null)
}

output "bucket_arn" {
  description = "ARN of the bucket, or null when create is false. The calling module derives its prefixes' object ARNs (<bucket ARN>/<prefix>/*) from it."
  value       = try(aws_s3_bucket.this[0].arn, null)
}

output "bucket_prefix" {
  description = "Prefix the bucket's name is generated from (<name cut to 36 characters>-, with use_name_prefix), or null with a fixed name or when create is false."
  value       = try(aws_s3_bucket.this[0].bucket_prefix, null)
}

output "kms_key_arn" {
  description = "KMS key of the bucket's default encryption, or null for SSE-S3 (AES256)."
  value       = var.kms_key_arn
}

output "server_side_encryption" {
  description = "The bucket's default encryption rule (apply_server_side_encryption_by_default: sse_algorithm AES256 or aws:kms, kms_master_key_id; bucket_key_enabled), or null when create is false."
  value       = try(one(aws_s3_bucket_server_side_encryption_configuration.this[0].rule), null)
}

output "object_ownership" {
  description = "Object ownership of the bucket (BucketOwnerEnforced: ACLs off), or null when create is false."
  value       = try(one(aws_s3_bucket_ownership_controls.this[0].rule).object_ownership, null)
}

output "versioning_enabled" {
  description = "Whether object versioning is enabled (false as well when create is false)."
  value       = length(aws_s3_bucket_versioning.this[*].id) > 0
}

output "lifecycle_configuration_rules" {
  description = "The bucket's lifecycle rules: expire-<prefix> for each of expiring_prefixes, in order, then abort-incomplete-uploads; null when create is false."
  value       = one(aws_s3_bucket_lifecycle_configuration.this[*].rule)
}
