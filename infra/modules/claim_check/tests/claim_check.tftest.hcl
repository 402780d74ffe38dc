# The claim-check bucket in real Terraform (mock provider, offline): defaults, KMS, fixed names,
# create = false, and an impossible expiration refused before apply.
# tests/infra/test_terraform.py and test_hardening.py check the settings statically.

mock_provider "aws" {
  # The bucket policy must be JSON for the provider to accept it on apply.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

run "defaults" {
  command = plan

  assert {
    condition     = module.bucket.bucket_prefix == "callback-bridge-claim-checks-"
    error_message = "the bucket is named from a prefix by default"
  }

  assert {
    condition     = one(module.bucket.server_side_encryption.apply_server_side_encryption_by_default).sse_algorithm == "AES256"
    error_message = "SSE-S3 (AES256) by default, as the worker requests"
  }

  assert {
    condition     = module.bucket.lifecycle_configuration_rules[0].expiration[0].days == 30
    error_message = "claim checks expire after 30 days by default"
  }

  assert {
    condition     = module.bucket.lifecycle_configuration_rules[0].filter[0].prefix == "claim-checks/"
    error_message = "the lifecycle rule covers the worker's claim-checks/ prefix"
  }

  assert {
    condition     = module.bucket.versioning_enabled == false
    error_message = "versioning is off by default"
  }

  assert {
    condition     = module.bucket.object_ownership == "BucketOwnerEnforced"
    error_message = "ACLs are off"
  }
}

run "kms_fixed_name_versioning" {
  command = plan

  variables {
    name            = "team-a"
    use_name_prefix = false
    kms_key_arn     = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    versioning      = true
    expiration_days = 7
  }

  assert {
    condition     = module.bucket.bucket_id == "team-a-claim-checks"
    error_message = "use_name_prefix = false names the bucket <name>-claim-checks"
  }

  assert {
    condition     = one(module.bucket.server_side_encryption.apply_server_side_encryption_by_default).sse_algorithm == "aws:kms"
    error_message = "kms_key_arn makes SSE-KMS the default"
  }

  assert {
    condition     = module.bucket.server_side_encryption.bucket_key_enabled == true
    error_message = "SSE-KMS uses an S3 Bucket Key"
  }

  assert {
    condition     = module.bucket.versioning_enabled == true
    error_message = "versioning = true enables versioning"
  }

  assert {
    condition     = module.bucket.lifecycle_configuration_rules[0].expiration[0].days == 7
    error_message = "expiration_days reaches the lifecycle rule"
  }
}

run "create_false_creates_nothing" {
  command = plan

  variables {
    create = false
  }

  assert {
    condition     = module.bucket.bucket_arn == null && output.bucket_id == null && output.claim_checks_arn == null
    error_message = "create = false creates nothing and the outputs are null"
  }
}

run "expiration_days_below_one_refused" {
  command = plan

  variables {
    expiration_days = 0
  }

  expect_failures = [var.expiration_days]
}

run "uppercase_name_refused" {
  command = plan

  variables {
    name = "Callback_Bridge"
  }

  expect_failures = [var.name]
}
