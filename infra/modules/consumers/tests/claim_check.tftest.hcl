# Claim checks (bridge/claim_check.py) in real Terraform (mock provider, offline): worker.env
# names the bucket (and threshold) only when one is given. The role's s3:PutObject on
# <bucket>/claim-checks/* is checked statically (tests/infra/test_terraform.py).

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }


  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }
}

variables {
  vpc_id               = "vpc-0123456789abcdef0"
  subnet_ids           = ["subnet-0123456789abcdef0"]
  ami_id               = "ami-0123456789abcdef0"
  worker_handler       = "mypackage.jobs:run"
  jobs_queue_url       = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-jobs"
  jobs_queue_arn       = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-jobs"
  results_queue_url    = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-results"
  results_queue_arn    = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-results"
  jobs_dlq_url         = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-jobs-dlq"
  jobs_dlq_arn         = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-jobs-dlq"
  worker_wheels_s3_uri = "s3://acme-artifacts/callback-bridge/wheels/"
}

run "no_bucket_no_claim_check_settings" {
  command = plan

  assert {
    condition     = !contains(keys(output.worker_environment), "BRIDGE_CLAIM_CHECK_BUCKET") && !contains(keys(output.worker_environment), "BRIDGE_CLAIM_CHECK_THRESHOLD")
    error_message = "without claim_check_bucket worker.env names no claim-check setting"
  }
}

run "bucket_reaches_worker_env" {
  command = plan

  variables {
    claim_check_bucket          = "callback-bridge-claim-checks-abc"
    claim_check_threshold_bytes = 65536
    claim_check_kms_key_arn     = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  }

  assert {
    condition     = output.worker_environment["BRIDGE_CLAIM_CHECK_BUCKET"] == "callback-bridge-claim-checks-abc"
    error_message = "worker.env must name the claim-check bucket"
  }

  assert {
    condition     = output.worker_environment["BRIDGE_CLAIM_CHECK_THRESHOLD"] == "65536"
    error_message = "worker.env must carry the claim-check threshold"
  }
}

run "negative_threshold_refused" {
  command = plan

  variables {
    claim_check_bucket          = "callback-bridge-claim-checks-abc"
    claim_check_threshold_bytes = -1
  }

  expect_failures = [var.claim_check_threshold_bytes]
}

run "kms_key_must_be_an_arn" {
  command = plan

  variables {
    claim_check_bucket      = "callback-bridge-claim-checks-abc"
    claim_check_kms_key_arn = "alias/claim-checks"
  }

  expect_failures = [var.claim_check_kms_key_arn]
}
