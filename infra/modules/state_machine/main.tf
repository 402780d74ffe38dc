# The callback-bridge state machine: a Map over $.jobs whose items are sent to
# the jobs queue with .waitForTaskToken. The definition is the shared template
# infra/statemachine/bridge.asl.json (also rendered by the Python package), so
# this module only fills its placeholders.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  create = var.create

  # The region of the jobs queue this machine sends to, from its ARN: data.aws_region's
  # attribute is `name` in hashicorp/aws 5.x and deprecated for `region` (absent from 5.100)
  # in 6.x, so the modules read neither (they work on both majors).
  region = split(":", var.jobs_queue_arn)[3]

  distributed = var.map_mode == "DISTRIBUTED"
  # S3-fed fan-outs (FanOutFromS3: a Distributed Map whatever map_mode) can run: the role may
  # read job files and write result files in the fan-out bucket, and start child executions.
  fanout          = var.fanout_bucket_arn != null
  child_workflows = local.distributed || local.fanout

  processor_config = local.distributed ? jsonencode({
    Mode          = "DISTRIBUTED"
    ExecutionType = "STANDARD"
  }) : jsonencode({ Mode = "INLINE" })

  # The task's timeout fields as one placeholder, exactly as StateMachineParams.task_timeouts()
  # renders them in Python: HeartbeatSeconds only when set (docs/timing.md).
  task_timeouts = join(", ", concat(
    var.heartbeat_seconds == null ? [] : ["\"HeartbeatSeconds\": ${var.heartbeat_seconds}"],
    ["\"TimeoutSeconds\": ${var.timeout_seconds}"],
  ))

  # The failure policy as the template's "tolerated" object, the same text as
  # StateMachineParams.tolerated_failures() in Python (json.dumps): count is a number of jobs, or
  # the number of jobs in the execution when there is no count limit; percentage is 100 when
  # there is no percentage limit. "report" tolerates everything (the execution succeeds).
  count_limited = var.failure_policy == "fail" && (var.tolerated_failure_count != null || var.tolerated_failure_percentage == null)
  tolerated_failures = join("", [
    "{",
    local.count_limited ? "\"count\": ${coalesce(var.tolerated_failure_count, 0)}" : "\"count.$\": \"States.ArrayLength($)\"",
    ", \"percentage\": ${coalesce(var.tolerated_failure_percentage, 100)}}",
  ])

  # The same policy as the S3-fed Distributed Map's own fields, the same text as
  # StateMachineParams.map_run_tolerance() in Python: "report" tolerates 100%; a limit of 0 (count
  # or percentage) is the count 0 alone; else the limits that are set (the count 0 when none is).
  zero_tolerance = var.tolerated_failure_count == 0 || var.tolerated_failure_percentage == 0
  map_run_tolerance = (
    var.failure_policy == "report" ? "\"ToleratedFailurePercentage\": 100" :
    local.zero_tolerance ? "\"ToleratedFailureCount\": 0" :
    join(", ", concat(
      local.count_limited ? ["\"ToleratedFailureCount\": ${coalesce(var.tolerated_failure_count, 0)}"] : [],
      var.tolerated_failure_percentage == null ? [] : ["\"ToleratedFailurePercentage\": ${var.tolerated_failure_percentage}"],
    ))
  )

  # bridge.timing.TimingModel.min_task_heartbeat_s and min_task_timeout_s (60 = RESULT_SLACK_S:
  # the time to send a result and delete the message, or to hand a released message back).
  min_heartbeat_seconds = floor(var.max_queue_wait_seconds + var.jobs_visibility_timeout_seconds + var.worker_heartbeat_interval_seconds + 60)
  min_timeout_seconds   = floor(var.max_queue_wait_seconds + var.job_timeout_seconds + var.worker_cancel_grace_seconds + 60)

  # Every placeholder of bridge.asl.json, and nothing else (tests/infra checks it).
  definition_vars = {
    jobs_queue_url         = var.jobs_queue_url
    task_timeouts          = local.task_timeouts
    retry_interval_seconds = var.retry_interval_seconds
    retry_max_attempts     = var.retry_max_attempts
    max_concurrency        = var.max_concurrency
    default_job_type       = var.default_job_type
    processor_config       = local.processor_config
    tolerated_failures     = local.tolerated_failures
    map_run_tolerance      = local.map_run_tolerance
  }

  definition = templatefile("${path.module}/../../statemachine/bridge.asl.json", local.definition_vars)

  # Constructed instead of taken from aws_sfn_state_machine.this.arn: the role
  # policy must not depend on the state machine that depends on the role.
  state_machine_arn = "arn:${data.aws_partition.current.partition}:states:${local.region}:${data.aws_caller_identity.current.account_id}:stateMachine:${var.name}"
  # Child workflow executions of a Distributed Map are labelled executions:
  # execution:<state machine name>/<map run label>:<execution id>.
  child_executions_arn = "arn:${data.aws_partition.current.partition}:states:${local.region}:${data.aws_caller_identity.current.account_id}:execution:${var.name}/*"
}

################################################################################
# Logging
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  count = local.create ? 1 : 0

  # The /aws/vendedlogs/ prefix keeps the CloudWatch Logs resource policy that
  # Step Functions manages from growing past its size limit.
  name              = "/aws/vendedlogs/states/${var.name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.log_kms_key_arn

  tags = var.tags
}

################################################################################
# IAM role
################################################################################

data "aws_iam_policy_document" "assume" {
  count = local.create ? 1 : 0

  statement {
    sid     = "StepFunctionsAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  count = local.create ? 1 : 0

  name                 = var.use_name_prefix ? null : "${var.name}-state-machine"
  name_prefix          = var.use_name_prefix ? "${substr("${var.name}-state-machine", 0, 37)}-" : null
  description          = "callback-bridge state machine ${var.name}"
  assume_role_policy   = data.aws_iam_policy_document.assume[0].json
  permissions_boundary = var.role_permissions_boundary_arn

  tags = var.tags
}

data "aws_iam_policy_document" "this" {
  count = local.create ? 1 : 0

  statement {
    sid       = "SendJobs"
    actions   = ["sqs:SendMessage"]
    resources = [var.jobs_queue_arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "EncryptJobs"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }

  # Execution data (inputs, outputs, task tokens in job messages, error causes) encrypted with
  # a customer-managed key: Step Functions uses the execution role's permissions, for this
  # state machine only (the encryption context names it).
  dynamic "statement" {
    for_each = var.execution_data_kms_key_arn == null ? [] : [var.execution_data_kms_key_arn]

    content {
      sid       = "EncryptExecutionData"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:aws:states:stateMachineArn"
        values   = [local.state_machine_arn]
      }
    }
  }

  dynamic "statement" {
    for_each = local.child_workflows ? [1] : []

    content {
      sid       = "DistributedMapStart"
      actions   = ["states:StartExecution"]
      resources = [local.state_machine_arn]
    }
  }

  dynamic "statement" {
    for_each = local.child_workflows ? [1] : []

    content {
      sid       = "DistributedMapChildren"
      actions   = ["states:DescribeExecution", "states:StopExecution"]
      resources = [local.child_executions_arn]
    }
  }

  # FanOutFromS3's ItemReader (s3:getObject of a JSON array object): job files only.
  dynamic "statement" {
    for_each = local.fanout ? [var.fanout_bucket_arn] : []

    content {
      sid       = "ReadFanOutItems"
      actions   = ["s3:GetObject"]
      resources = ["${statement.value}/items/*"]
    }
  }

  # FanOutFromS3's ResultWriter ("IAM policies for ResultWriter", Step Functions developer
  # guide): result files, which it may upload in parts, only under results/.
  dynamic "statement" {
    for_each = local.fanout ? [var.fanout_bucket_arn] : []

    content {
      sid = "WriteFanOutResults"
      actions = [
        "s3:PutObject",
        "s3:GetObject",
        "s3:ListMultipartUploadParts",
        "s3:AbortMultipartUpload",
      ]
      resources = ["${statement.value}/results/*"]
    }
  }

  dynamic "statement" {
    for_each = local.fanout && var.fanout_kms_key_arn != null ? [var.fanout_kms_key_arn] : []

    content {
      sid       = "EncryptFanOut"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }

  # Required on the execution role for logging_configuration; these actions
  # have no resource-level permissions.
  statement {
    sid = "LogDelivery"
    actions = [
      "logs:CreateLogDelivery",
      "logs:GetLogDelivery",
      "logs:UpdateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:DescribeResourcePolicies",
      "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.tracing_enabled ? [1] : []

    content {
      sid = "XRay"
      actions = [
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
      ]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  count = local.create ? 1 : 0

  name   = "callback-bridge"
  role   = aws_iam_role.this[0].id
  policy = data.aws_iam_policy_document.this[0].json
}

################################################################################
# State machine
################################################################################

resource "aws_sfn_state_machine" "this" {
  count = local.create ? 1 : 0

  #checkov:skip=CKV_AWS_285:Execution history is logged (level ERROR by default) but include_execution_data defaults to false on purpose: job messages carry task tokens, and anyone reading a token can complete or fail the task.
  #checkov:skip=CKV_AWS_284:X-Ray tracing is optional (tracing_enabled, default false) to avoid tracing cost on long-running executions.

  name       = var.name
  type       = "STANDARD"
  role_arn   = aws_iam_role.this[0].arn
  definition = local.definition

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.this[0].arn}:*"
    level                  = var.log_level
    include_execution_data = var.include_execution_data
  }

  tracing_configuration {
    enabled = var.tracing_enabled
  }

  # Execution history and definition: AWS-owned key by default, or the customer-managed key of
  # execution_data_kms_key_arn (its key policy must let this module's role use it).
  encryption_configuration {
    type                              = var.execution_data_kms_key_arn == null ? "AWS_OWNED_KEY" : "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = var.execution_data_kms_key_arn
    kms_data_key_reuse_period_seconds = var.execution_data_kms_key_arn == null ? null : var.kms_data_key_reuse_period_seconds
  }

  tags = var.tags

  # The role policy must exist before the first execution can send a job.
  depends_on = [aws_iam_role_policy.this]

  # The timing model's task rules (bridge.timing.TimingModel._task_rules), as
  # preconditions because they relate several variables: required_version is ">= 1.5", and
  # only Terraform >= 1.9 lets a variable's validation refer to other variables. The error
  # messages must not interpolate heartbeat_seconds: it may be null, and Terraform renders a
  # condition's error message even when the condition holds.
  lifecycle {
    precondition {
      condition     = var.heartbeat_seconds == null ? true : var.heartbeat_seconds >= local.min_heartbeat_seconds
      error_message = "heartbeat_seconds (HeartbeatSeconds) is shorter than the longest queue wait (max_queue_wait_seconds, ${var.max_queue_wait_seconds} s) + a redelivery (jobs_visibility_timeout_seconds, ${var.jobs_visibility_timeout_seconds} s) + the heartbeat interval (worker_heartbeat_interval_seconds, ${var.worker_heartbeat_interval_seconds} s) + 60 s: jobs would time out in the queue. Use at least ${local.min_heartbeat_seconds}, or leave heartbeat_seconds null (liveness then comes from SQS; see docs/timing.md)."
    }

    precondition {
      condition     = var.heartbeat_seconds == null ? true : var.heartbeat_seconds < var.timeout_seconds
      error_message = "heartbeat_seconds must be shorter than timeout_seconds (${var.timeout_seconds}): Step Functions rejects a HeartbeatSeconds that is not below TimeoutSeconds. Leave heartbeat_seconds null to rely on SQS for liveness."
    }

    precondition {
      condition     = var.failure_policy == "fail" || (var.tolerated_failure_count == null && var.tolerated_failure_percentage == null)
      error_message = "tolerated_failure_count and tolerated_failure_percentage apply only with failure_policy = \"fail\" (with \"report\" every failure is tolerated)."
    }

    precondition {
      condition     = var.timeout_seconds >= local.min_timeout_seconds
      error_message = "timeout_seconds (TimeoutSeconds) ${var.timeout_seconds} is shorter than the longest queue wait (max_queue_wait_seconds, ${var.max_queue_wait_seconds} s) + the job timeout (job_timeout_seconds, ${var.job_timeout_seconds} s) + ${var.worker_cancel_grace_seconds} + 60 s: use at least ${local.min_timeout_seconds}."
    }
  }
}
