# Jobs queue (Step Functions -> EC2 consumers), results queue (consumers ->
# completion Lambda) and one dead-letter queue for each; with
# dead_letter_handling (default), one archive per DLQ as well.
#
# The redrive policy lives on each source queue and points at its DLQ; the
# DLQ's redrive-allow policy is a separate resource so that the two queues do
# not reference each other (which would be a dependency cycle).
#
# Dead-letter handling (docs/dead-letters.md, bridge/dead_letter.py): the
# dead_letter module's Lambda consumes each DLQ, tells the execution, and copies
# the letter to <name>-<side>-dead-letters, the archive operators inspect. The
# DLQ gets its own redrive policy to that archive with maxReceiveCount = the
# source's + 3 (bridge.dead_letter.dlq_max_receive_count): a letter the handler
# keeps failing on still ends in the archive, bare. SQS keeps a message's
# receive count when it dead-letters it, hence "+ 3" and not "3". Without
# dead-letter handling the DLQs have no redrive policy (peeking never moves a
# letter) and there are no archives.

locals {
  create = var.create

  use_kms = var.kms_master_key_id != null

  # bridge.dead_letter.HANDLER_ATTEMPTS: how many times the handler may fail one
  # letter before the DLQ's own redrive archives it.
  handler_attempts = 3

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
  for_each = local.create ? local.queues : {}

  name                       = "${each.value.name}-dlq"
  message_retention_seconds  = var.dlq_message_retention_seconds
  receive_wait_time_seconds  = var.receive_wait_time_seconds
  visibility_timeout_seconds = each.value.visibility_timeout_seconds
  max_message_size           = var.max_message_size

  sqs_managed_sse_enabled           = local.use_kms ? null : true
  kms_master_key_id                 = var.kms_master_key_id
  kms_data_key_reuse_period_seconds = local.use_kms ? var.kms_data_key_reuse_period_seconds : null

  # redrive_policy (DLQ -> archive) is aws_sqs_queue_redrive_policy.dlq below: the
  # attribute is optional and computed, so leaving it out here would not clear it
  # when dead_letter_handling is switched off, while destroying that resource does.

  tags = merge(var.tags, { "callback-bridge:queue" = "${each.key}-dlq" })

  lifecycle {
    precondition {
      condition     = var.dlq_message_retention_seconds > each.value.message_retention_seconds
      error_message = "dlq_message_retention_seconds must be longer than the ${each.key} queue's retention: a standard queue keeps a message's original enqueue timestamp when it is moved to the DLQ, so a shorter DLQ retention deletes it early."
    }
  }
}

resource "aws_sqs_queue" "this" {
  for_each = local.create ? local.queues : {}

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
  for_each = local.create ? local.queues : {}

  queue_url = aws_sqs_queue.dlq[each.key].id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this[each.key].arn]
  })
}

################################################################################
# Dead-letter archives (dead_letter_handling)
################################################################################

resource "aws_sqs_queue" "archive" {
  for_each = local.create && var.dead_letter_handling ? local.queues : {}

  # bridge.dead_letter.archive_name: <name>-jobs-dlq -> <name>-jobs-dead-letters.
  name                      = "${each.value.name}-dead-letters"
  message_retention_seconds = var.archive_message_retention_seconds
  receive_wait_time_seconds = var.receive_wait_time_seconds
  max_message_size          = var.max_message_size

  sqs_managed_sse_enabled           = local.use_kms ? null : true
  kms_master_key_id                 = var.kms_master_key_id
  kms_data_key_reuse_period_seconds = local.use_kms ? var.kms_data_key_reuse_period_seconds : null

  tags = merge(var.tags, { "callback-bridge:queue" = "${each.key}-dead-letters" })

  lifecycle {
    precondition {
      # 80 is the SQS name limit; "-results-dead-letters" is 21 characters.
      condition     = length(var.name) <= 59
      error_message = "name must be at most 59 characters with dead_letter_handling: the archive <name>-results-dead-letters would pass SQS's 80-character limit."
    }
  }
}

# DLQ -> archive (bridge.dead_letter.dlq_max_receive_count): a letter the handler
# keeps failing on ends in the archive, bare.
resource "aws_sqs_queue_redrive_policy" "dlq" {
  for_each = aws_sqs_queue.archive

  queue_url = aws_sqs_queue.dlq[each.key].id

  redrive_policy = jsonencode({
    deadLetterTargetArn = each.value.arn
    maxReceiveCount     = local.queues[each.key].max_receive_count + local.handler_attempts
  })
}

# Only the DLQ may dead-letter into its archive. The archive being a DLQ of the
# DLQ is also what lets StartMessageMoveTask take it as a source (dlq redrive,
# with the source queue as explicit destination).
resource "aws_sqs_queue_redrive_allow_policy" "archive" {
  for_each = aws_sqs_queue.archive

  queue_url = each.value.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.dlq[each.key].arn]
  })
}

################################################################################
# Queue policies: TLS only, and (where sender_arns names them) only the expected senders
################################################################################

locals {
  # Every queue of the module, keyed as in sender_arns.
  all_queues = merge(
    { for k, q in aws_sqs_queue.this : k => q },
    { for k, q in aws_sqs_queue.dlq : "${k}_dlq" => q },
    { for k, q in aws_sqs_queue.archive : "${k}_archive" => q },
  )
}

data "aws_iam_policy_document" "queue" {
  for_each = local.all_queues

  # Requests over plain HTTP are refused, whoever makes them.
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value.arn]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # Only the roles that produce this queue's messages may send to it (the state machine for
  # jobs, the workers for results and malformed jobs, the completion Lambda for the results
  # DLQ, the dead-letter Lambda for the archives), plus whoever redrives dead letters.
  # Redrives along a redrive policy are SQS's own and need no grant.
  dynamic "statement" {
    for_each = length(lookup(var.sender_arns, each.key, [])) > 0 ? [var.sender_arns[each.key]] : []

    content {
      sid       = "DenyOtherSenders"
      effect    = "Deny"
      actions   = ["sqs:SendMessage"]
      resources = [each.value.arn]

      principals {
        type        = "AWS"
        identifiers = ["*"]
      }

      condition {
        test     = "ArnNotLike"
        variable = "aws:PrincipalArn"
        values   = concat(statement.value, var.operator_arns)
      }
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  for_each = local.all_queues

  queue_url = each.value.id
  policy    = data.aws_iam_policy_document.queue[each.key].json
}
