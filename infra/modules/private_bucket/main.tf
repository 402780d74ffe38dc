# A private S3 bucket of transient objects, the one way this project makes its buckets (the
# claim_check and fanout modules call it): Block Public Access, ACLs off, SSE-S3 or SSE-KMS by
# default, a policy denying requests without TLS, lifecycle expiry of the prefixes the caller
# names, versioning only on request. What differs (name, prefixes, who gets access) stays in the
# calling module.

locals {
  create = var.create
}

# Checks skipped on purpose (infra/README.md, Static checks): every caller's objects are
# transient (job files, results, task outputs) and expire in days.
resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:access logging is an organisation-level choice (CloudTrail data events or a log bucket of the account); the writers (workers, Step Functions) log their writes
  #checkov:skip=CKV_AWS_144:cross-region replication of transient objects that expire in days is not wanted
  #checkov:skip=CKV2_AWS_62:nothing consumes events of this bucket: readers follow a pointer (a task output, an execution output)
  #checkov:skip=CKV_AWS_21:versioning is optional (var.versioning, default false): the callers write each key once
  #checkov:skip=CKV_AWS_145:SSE-S3 by default, SSE-KMS with var.kms_key_arn
  count = local.create ? 1 : 0

  bucket        = var.use_name_prefix ? null : var.name
  bucket_prefix = var.use_name_prefix ? "${substr(var.name, 0, 36)}-" : null
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
  #checkov:skip=CKV_AWS_300:false positive: the abort-incomplete-uploads rule below does this bucket-wide, but checkov drops static rule blocks once it expands the dynamic ones (tests/private_bucket.tftest.hcl asserts the rule in real Terraform)
  count = local.create ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  dynamic "rule" {
    for_each = var.expiring_prefixes

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

  # The callers' writers store with one PutObject or in parts (the Map's ResultWriter): any
  # multipart upload left behind (by anyone) is aborted after a day, bucket-wide.
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

  # The callers' own statements, if any; the TLS statement below always applies.
  source_policy_documents = var.policy_documents

  # Objects may carry anything a job takes or returns: no request without TLS.
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
