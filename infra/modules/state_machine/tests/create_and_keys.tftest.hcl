# create = false and the customer-managed key for execution data, in real Terraform (mock provider,
# offline; tests/infra/test_timing_mirror.py runs it).

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
  jobs_queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-jobs"
  jobs_queue_arn = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-jobs"
}

run "create_false_creates_nothing" {
  command = plan

  variables {
    create = false
  }

  assert {
    condition     = length(aws_sfn_state_machine.this) == 0 && length(aws_iam_role.this) == 0 && length(aws_cloudwatch_log_group.this) == 0
    error_message = "create = false must create nothing"
  }

  assert {
    condition     = output.state_machine_arn == null && output.role_arn == null
    error_message = "outputs are null when create is false"
  }
}

run "execution_data_with_a_customer_managed_key" {
  command = plan

  variables {
    execution_data_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/0123abcd-0123-0123-0123-0123456789ab"
  }

  assert {
    condition     = aws_sfn_state_machine.this[0].encryption_configuration[0].type == "CUSTOMER_MANAGED_KMS_KEY" && aws_sfn_state_machine.this[0].encryption_configuration[0].kms_data_key_reuse_period_seconds == 300
    error_message = "execution data must be encrypted with the given key"
  }
}

run "aws_owned_key_by_default" {
  command = plan

  assert {
    condition     = aws_sfn_state_machine.this[0].encryption_configuration[0].type == "AWS_OWNED_KEY"
    error_message = "without a key, Step Functions' own encryption"
  }
}

run "key_alias_is_refused" {
  command = plan

  variables {
    execution_data_kms_key_arn = "alias/callback-bridge"
  }

  expect_failures = [var.execution_data_kms_key_arn]
}
