# The fan-out bucket (bridge/fanout.py): large fan-outs put their jobs here as one JSON array
# object under items/, the state machine's S3-fed Distributed Map (FanOutFromS3) reads it with
# its ItemReader and writes each job's result under results/<execution name>/ with its
# ResultWriter. Neither the execution input nor the Map's output then carries the jobs, so
# neither meets Step Functions' 256 KiB limit. Objects are transient: the lifecycle expires them.

locals {
  create = var.create

  # bridge.fanout.ITEMS_PREFIX and RESULTS_PREFIX; the template's ResultWriter Prefix.
  items_prefix   = "items"
  results_prefix = "results"
}

# Checks skipped on purpose (infra/README.md, Static checks): the objects are transient job
# files and results, written again by re-running the fan-out.
resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:access logging is an organisation-level choice (CloudTrail data events or a log bucket of the account); Step Functions logs the Map Run
  #checkov:skip=CKV_AWS_144:cross-region replication of transient job files and results that expire in days is not wanted
  #checkov:skip=CKV2_AWS_62:nothing consumes events of this bucket: the execution output names the results manifest
  #checkov:skip=CKV_AWS_21:versioning is optional (var.versioning, default false): each run writes new keys once
  #checkov:skip=CKV_AWS_145:SSE-S3 by default, SSE-KMS with var.kms_key_arn
  count = local.create ? 1 : 0

  bucket        = var.use_name_prefix ? null : "${var.name}-fanout"
  bucket_prefix = var.use_name_prefix ? "${substr("${var.name}-fanout", 0, 36)}-" : null
  force_destroy = var.force_destroy

  tags = var.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  count = local.create ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  count = local.create ? 1 : 0

  bucket                  = aws_s3_bucket.this[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  count = local.create ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_versioning" "this" {
  count = local.create && var.versioning ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  count = local.create ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  dynamic "rule" {
    for_each = [local.items_prefix, local.results_prefix]

    content {
      id     = "expire-${rule.value}"
      status = "Enabled"

      filter {
        prefix = "${rule.value}/"
      }

      expiration {
        days = var.expiration_days
      }

      noncurrent_version_expiration {
        noncurrent_days = var.expiration_days
      }
    }
  }

  # The ResultWriter may write large result files in parts: parts of an upload it abandoned are
  # aborted after a day, bucket-wide.
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # The rule applies to the versioning state in force.
  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "this" {
  count = local.create ? 1 : 0

  # Jobs and results may carry anything: no request without TLS.
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this[0].arn, "${aws_s3_bucket.this[0].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  count = local.create ? 1 : 0

  bucket = aws_s3_bucket.this[0].id
  policy = data.aws_iam_policy_document.this[0].json

  # S3 refuses a bucket policy while Block Public Access is being set.
  depends_on = [aws_s3_bucket_public_access_block.this]
}
