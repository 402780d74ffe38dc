# The workers' role in the terraform-aws-modules way (mock provider, offline): created by
# default, or brought with create_iam_role = false and iam_role_arn, the module's policy and the
# instance profile going on it either way; the caller's extra statements; job_user's wiring.


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

run "creates_its_role_by_default" {
  command = plan

  assert {
    condition     = length(aws_iam_role.this) == 1 && length(aws_iam_role_policy.this) == 1
    error_message = "by default the module creates the workers' role and its policy"
  }

  assert {
    condition     = strcontains(local.worker_env_file, "BRIDGE_RUN_AS=\"callback-bridge-job\"")
    error_message = "worker.env must run jobs as the default job_user"
  }
}

run "brings_its_own_role" {
  command = plan

  variables {
    create_iam_role = false
    iam_role_arn    = "arn:aws:iam::123456789012:role/platform/acme-workers"
    job_user        = null
  }

  assert {
    condition     = length(aws_iam_role.this) == 0
    error_message = "with create_iam_role = false no role is created"
  }

  assert {
    condition     = aws_iam_role_policy.this[0].role == "acme-workers" && aws_iam_instance_profile.this[0].role == "acme-workers"
    error_message = "the policy and the instance profile go on the brought role (its name, path dropped)"
  }

  assert {
    condition     = output.role_arn == "arn:aws:iam::123456789012:role/platform/acme-workers" && output.role_name == "acme-workers"
    error_message = "role_arn / role_name name the brought role"
  }

  assert {
    condition     = !strcontains(local.worker_env_file, "BRIDGE_RUN_AS")
    error_message = "job_user = null writes no BRIDGE_RUN_AS"
  }
}

run "a_brought_role_needs_its_arn" {
  command = plan

  variables {
    create_iam_role = false
  }

  expect_failures = [aws_iam_role_policy.this]
}

run "refuses_root_as_job_user" {
  command = plan

  variables {
    job_user = "root"
  }

  expect_failures = [var.job_user]
}

run "caller_statements_are_validated" {
  command = plan

  variables {
    iam_role_policy_statements = {
      "not a sid" = { actions = ["s3:GetObject"], resources = ["*"] }
    }
  }

  expect_failures = [var.iam_role_policy_statements]
}
