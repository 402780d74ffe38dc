# Jobs queue (Step Functions -> EC2 consumers), results queue (consumers ->
# completion Lambda) and one dead-letter queue for each.
#
# The redrive policy lives on each source queue and points at its DLQ; the
# DLQ's redrive-allow policy is a separate resource so that the two queues do
# not reference each other (which would be a dependency cycle).

locals {
  use_kms = var.kms_master_key_id != null

  queues = {
    jobs = {
      name                       = "${var.name}-jobs"
      visibility_timeout_seconds = var.jobs_visibility_timeout_seconds
      message_retention_seconds  = var.jobs_message_retention_seconds
      max_receive_count          = var.jobs_max_receive_count
    }
    results = {
      name                       = "${var.name}-results"
      visibility_timeout_seconds = var.results_visibility_timeout_seconds
      message_retention_seconds  = var.results_message_retention_seconds
      max_receive_count          = var.results_max_receive_count
    }
  }
}

resource "aws_sqs_queue" "dlq" {
  for_each = local.queues

  name                       = "${each.value.name}-dlq"
  message_retention_seconds  = var.dlq_message_retention_seconds
  receive_wait_time_seconds  = var.receive_wait_time_seconds
  visibility_timeout_seconds = each.value.visibility_timeout_seconds
  max_message_size           = var.max_message_size

  sqs_managed_sse_enabled           = local.use_kms ? null : true
  kms_master_key_id                 = var.kms_master_key_id
  kms_data_key_reuse_period_seconds = local.use_kms ? var.kms_data_key_reuse_period_seconds : null

  tags = merge(var.tags, { "callback-bridge:queue" = "${each.key}-dlq" })

  lifecycle {
    precondition {
      condition     = var.dlq_message_retention_seconds > each.value.message_retention_seconds
      error_message = "dlq_message_retention_seconds must be longer than the ${each.key} queue's retention: a standard queue keeps a message's original enqueue timestamp when it is moved to the DLQ, so a shorter DLQ retention deletes it early."
    }
  }
}

resource "aws_sqs_queue" "this" {
  for_each = local.queues

  name                       = each.value.name
  message_retention_seconds  = each.value.message_retention_seconds
  receive_wait_time_seconds  = var.receive_wait_time_seconds
  visibility_timeout_seconds = each.value.visibility_timeout_seconds
  max_message_size           = var.max_message_size

  sqs_managed_sse_enabled           = local.use_kms ? null : true
  kms_master_key_id                 = var.kms_master_key_id
  kms_data_key_reuse_period_seconds = local.use_kms ? var.kms_data_key_reuse_period_seconds : null

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = each.value.max_receive_count
  })

  tags = merge(var.tags, { "callback-bridge:queue" = each.key })
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each = local.queues

  queue_url = aws_sqs_queue.dlq[each.key].id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this[each.key].arn]
  })
}
