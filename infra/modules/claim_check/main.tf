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

# The bucket itself (private, TLS only, SSE-S3 or SSE-KMS, prefix expiry): the shared
# private_bucket submodule, as for the fan-out bucket. This module names it and its prefix.
module "bucket" {
  source = "../private_bucket"

  create = local.create

  name            = "${var.name}-claim-checks"
  use_name_prefix = var.use_name_prefix
  force_destroy   = var.force_destroy

  kms_key_arn       = var.kms_key_arn
  versioning        = var.versioning
  expiring_prefixes = [local.key_prefix]
  expiration_days   = var.expiration_days

  tags = var.tags
}
