# The claim-check bucket (bridge/claim_check.py): a worker whose output does not fit in a result
# message stores it as s3://<bucket>/claim-checks/<execution>/<job id>/<sha256>.json and sends a
# pointer instead. Objects are transient: read by the execution's downstream states, then
# expired by the lifecycle rule.

data "aws_partition" "current" {
  count = local.create ? 1 : 0
}

locals {
  create = var.create

  # bridge.claim_check.DEFAULT_KEY_PREFIX: the worker writes only under this prefix.
  key_prefix = "claim-checks"
}

# Checks skipped on purpose (infra/README.md, Static checks): the objects are transient copies of
# task outputs, readable again from the execution that wrote them until they expire.
resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:access logging is an organisation-level choice (CloudTrail data events or a log bucket of the account); the workers' writes are in their logs
  #checkov:skip=CKV_AWS_144:cross-region replication of transient outputs that expire in days is not wanted
  #checkov:skip=CKV2_AWS_62:nothing consumes events of this bucket: readers follow the pointer in the task output
  #checkov:skip=CKV_AWS_21:versioning is optional (var.versioning, default false): objects are content-addressed and written once
  #checkov:skip=CKV_AWS_145:SSE-S3 by default, SSE-KMS with var.kms_key_arn
  count = local.create ? 1 : 0

  bucket        = var.use_name_prefix ? null : "${var.name}-claim-checks"
  bucket_prefix = var.use_name_prefix ? "${substr("${var.name}-claim-checks", 0, 36)}-" : null
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

  rule {
    id     = "expire-claim-checks"
    status = "Enabled"

    filter {
      prefix = "${local.key_prefix}/"
    }

    expiration {
      days = var.expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.expiration_days
    }
  }

  # The worker stores with one PutObject; any multipart upload left behind (by anyone) is
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

  # Task outputs may carry anything a job returns: no request without TLS.
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
