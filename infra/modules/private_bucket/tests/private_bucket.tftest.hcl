# The shared private bucket in real Terraform (mock provider, offline): the settings every
# caller (claim_check, fanout) relies on, KMS, fixed names, extra policy documents,
# create = false, and bad input refused before apply. The callers' suites check what they pass.

mock_provider "aws" {
  # The bucket policy must be JSON for the provider to accept it on apply.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  name              = "callback-bridge-things"
  expiring_prefixes = ["items", "results"]
}

run "defaults" {
  command = plan

  assert {
    condition     = aws_s3_bucket.this[0].bucket_prefix == "callback-bridge-things-"
    error_message = "the bucket is named from a prefix by default"
  }

  assert {
    condition     = aws_s3_bucket.this[0].force_destroy == false
    error_message = "a destroy fails while objects remain by default"
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.this[0].block_public_acls &&
      aws_s3_bucket_public_access_block.this[0].block_public_policy &&
      aws_s3_bucket_public_access_block.this[0].ignore_public_acls &&
      aws_s3_bucket_public_access_block.this[0].restrict_public_buckets
    )
    error_message = "all four Block Public Access settings are on"
  }

  assert {
    condition     = one(aws_s3_bucket_ownership_controls.this[0].rule).object_ownership == "BucketOwnerEnforced"
    error_message = "ACLs are off"
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this[0].rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256"
    error_message = "SSE-S3 (AES256) by default"
  }

  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.this[0].rule).bucket_key_enabled == false
    error_message = "no S3 Bucket Key without KMS"
  }

  assert {
    condition     = [for r in aws_s3_bucket_lifecycle_configuration.this[0].rule : r.id] == ["expire-items", "expire-results", "abort-incomplete-uploads"]
    error_message = "one expiry rule per prefix, in order, then the multipart abort rule"
  }

  assert {
    condition     = [for r in aws_s3_bucket_lifecycle_configuration.this[0].rule : r.filter[0].prefix if length(r.expiration) > 0] == ["items/", "results/"]
    error_message = "each rule expires its prefix only"
  }

  assert {
    condition = alltrue([
      for r in aws_s3_bucket_lifecycle_configuration.this[0].rule :
      r.expiration[0].days == 30 && r.noncurrent_version_expiration[0].noncurrent_days == 30
      if length(r.expiration) > 0
    ])
    error_message = "objects and noncurrent versions expire after 30 days by default"
  }

  assert {
    condition     = aws_s3_bucket_lifecycle_configuration.this[0].rule[2].abort_incomplete_multipart_upload[0].days_after_initiation == 1
    error_message = "incomplete multipart uploads are aborted after a day"
  }

  assert {
    condition     = length(aws_s3_bucket_versioning.this) == 0 && output.versioning_enabled == false
    error_message = "versioning is off by default"
  }

  assert {
    condition     = one(data.aws_iam_policy_document.this[0].statement).sid == "DenyInsecureTransport" && one(data.aws_iam_policy_document.this[0].statement).effect == "Deny"
    error_message = "the bucket policy denies requests without TLS"
  }

  assert {
    condition     = output.object_ownership == "BucketOwnerEnforced" && output.bucket_prefix == "callback-bridge-things-"
    error_message = "the outputs report the planned settings"
  }
}

run "kms_fixed_name_versioning_policy" {
  command = plan

  variables {
    name              = "team-a-claim-checks"
    use_name_prefix   = false
    kms_key_arn       = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    versioning        = true
    expiration_days   = 7
    expiring_prefixes = ["claim-checks"]
    force_destroy     = true
    policy_documents  = ["{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"Extra\",\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:DeleteBucket\",\"Resource\":\"*\"}]}"]
    tags              = { team = "a" }
  }

  assert {
    condition     = aws_s3_bucket.this[0].bucket == "team-a-claim-checks" && output.bucket_id == "team-a-claim-checks"
    error_message = "use_name_prefix = false names the bucket exactly name"
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this[0].rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms"
    error_message = "kms_key_arn makes SSE-KMS the default"
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this[0].rule).apply_server_side_encryption_by_default).kms_master_key_id == var.kms_key_arn
    error_message = "the default encryption uses the given key"
  }

  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.this[0].rule).bucket_key_enabled == true
    error_message = "SSE-KMS uses an S3 Bucket Key"
  }

  assert {
    condition     = one(aws_s3_bucket_versioning.this[0].versioning_configuration).status == "Enabled"
    error_message = "versioning = true enables versioning"
  }

  assert {
    condition     = [for r in aws_s3_bucket_lifecycle_configuration.this[0].rule : r.id] == ["expire-claim-checks", "abort-incomplete-uploads"]
    error_message = "one prefix, one expiry rule"
  }

  assert {
    condition     = aws_s3_bucket_lifecycle_configuration.this[0].rule[0].expiration[0].days == 7 && aws_s3_bucket_lifecycle_configuration.this[0].rule[0].noncurrent_version_expiration[0].noncurrent_days == 7
    error_message = "expiration_days reaches the lifecycle rule"
  }

  assert {
    condition     = aws_s3_bucket.this[0].force_destroy && aws_s3_bucket.this[0].tags["team"] == "a"
    error_message = "force_destroy and tags reach the bucket"
  }

  assert {
    condition     = data.aws_iam_policy_document.this[0].source_policy_documents == var.policy_documents
    error_message = "the caller's policy documents are merged into the bucket policy"
  }
}

run "create_false_creates_nothing" {
  command = plan

  variables {
    create = false
  }

  assert {
    condition = (
      length(aws_s3_bucket.this) == 0 && length(aws_s3_bucket_policy.this) == 0 &&
      length(aws_s3_bucket_lifecycle_configuration.this) == 0 &&
      output.bucket_id == null && output.bucket_arn == null && output.lifecycle_configuration_rules == null
    )
    error_message = "create = false creates nothing and the outputs are null"
  }
}

run "uppercase_name_refused" {
  command = plan

  variables {
    name = "Callback_Bridge"
  }

  expect_failures = [var.name]
}

run "prefix_with_slash_refused" {
  command = plan

  variables {
    expiring_prefixes = ["items/"]
  }

  expect_failures = [var.expiring_prefixes]
}

run "no_prefix_refused" {
  command = plan

  variables {
    expiring_prefixes = []
  }

  expect_failures = [var.expiring_prefixes]
}

run "expiration_days_below_one_refused" {
  command = plan

  variables {
    expiration_days = 0
  }

  expect_failures = [var.expiration_days]
}

run "policy_document_not_json_refused" {
  command = plan

  variables {
    policy_documents = ["not json"]
  }

  expect_failures = [var.policy_documents]
}
