# The fan-out bucket (bridge/ops/fanout.py): large fan-outs put their jobs here as one JSON array
# object under items/, the state machine's S3-fed Distributed Map (FanOutFromS3) reads it with
# its ItemReader and writes each job's result under results/<execution name>/ with its
# ResultWriter. Neither the execution input nor the Map's output then carries the jobs, so
# neither meets Step Functions' 256 KiB limit. Objects are transient: the lifecycle expires them.

locals {
  create = var.create

  # bridge.ops.fanout.ITEMS_PREFIX and RESULTS_PREFIX; the template's ResultWriter Prefix.
  items_prefix   = "items"
  results_prefix = "results"
}

# The bucket itself (private, TLS only, SSE-S3 or SSE-KMS, prefix expiry): the shared
# private_bucket submodule, as for the claim-check bucket. This module names it and its prefixes.
module "bucket" {
  source = "../private_bucket"

  create = local.create

  name            = "${var.name}-fanout"
  use_name_prefix = var.use_name_prefix
  force_destroy   = var.force_destroy

  kms_key_arn       = var.kms_key_arn
  versioning        = var.versioning
  expiring_prefixes = [local.items_prefix, local.results_prefix]
  expiration_days   = var.expiration_days

  tags = var.tags
}
