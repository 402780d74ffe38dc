# The fan-out bucket in real Terraform (mock provider, offline): defaults, KMS, create = false,
# and an impossible expiration refused before apply.

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
    condition     = module.bucket.bucket_prefix == "callback-bridge-fanout-"
    error_message = "the bucket is named from a prefix by default"
  }

  assert {
    condition     = one(module.bucket.server_side_encryption.apply_server_side_encryption_by_default).sse_algorithm == "AES256"
    error_message = "SSE-S3 (AES256) by default"
  }

  assert {
    condition     = [for r in module.bucket.lifecycle_configuration_rules : r.filter[0].prefix if length(r.expiration) > 0] == ["items/", "results/"]
    error_message = "job files and result files expire"
  }

  assert {
    condition     = alltrue([for r in module.bucket.lifecycle_configuration_rules : r.expiration[0].days == 30 if length(r.expiration) > 0])
    error_message = "files expire after 30 days by default"
  }

  assert {
    condition     = module.bucket.versioning_enabled == false
    error_message = "versioning is off by default"
  }
}

run "kms" {
  command = plan

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  }

  assert {
    condition     = one(module.bucket.server_side_encryption.apply_server_side_encryption_by_default).sse_algorithm == "aws:kms"
    error_message = "kms_key_arn makes SSE-KMS the default"
  }
}

run "create_false" {
  command = plan

  variables {
    create = false
  }

  assert {
    condition     = module.bucket.bucket_arn == null && output.bucket_arn == null && output.results_arn == null
    error_message = "create = false creates nothing and the outputs are null"
  }
}

run "bad_expiration" {
  command = plan

  variables {
    expiration_days = 0
  }

  expect_failures = [var.expiration_days]
}
