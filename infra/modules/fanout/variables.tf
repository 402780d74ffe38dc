variable "create" {
  description = "Create the fan-out bucket (and its settings and policy); false creates nothing (outputs are null) and only {\"jobs\": [...]} fan-outs can run."
  type        = bool
  default     = true
}

variable "name" {
  description = "Deployment name the bucket is named from: <name>-fanout-<suffix> with use_name_prefix (the prefix cut to 37 characters, S3's limit for bucket_prefix), else <name>-fanout. Lowercase, as S3 bucket names must be."
  type        = string
  default     = "callback-bridge"

  validation {
    # 63 is S3's limit for a bucket name; "-fanout" is 7 characters.
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{0,49}$", var.name))
    error_message = "name must be 1-50 characters of a-z, 0-9, '.' or '-', starting with a letter or digit (S3 bucket naming)."
  }
}

variable "use_name_prefix" {
  description = "Name the bucket from a prefix (<name>-fanout-<suffix>) instead of the fixed name <name>-fanout, so two deployments (S3 bucket names are global across accounts and regions) do not collide."
  type        = bool
  default     = true
}

variable "expiration_days" {
  description = "Days after which job files (items/) and result files (results/) expire. Keep this longer than the longest fan-out plus whatever reads its results afterwards (default 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.expiration_days >= 1 && var.expiration_days <= 3650 && floor(var.expiration_days) == var.expiration_days
    error_message = "expiration_days must be a whole number of days between 1 and 3650."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key for the bucket's default encryption (SSE-KMS, with an S3 Bucket Key). null (default) uses SSE-S3 (AES256). Pass the same ARN to the state_machine module (fanout_kms_key_arn) so its role may read and write the objects; the key policy must allow that role and whoever uploads job files."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (not a key ID or alias) or null."
  }
}

variable "versioning" {
  description = "Enable object versioning. Off by default: each run writes new keys once (items/<execution name>.json, results/<execution name>/...). When on, noncurrent versions expire after expiration_days as well."
  type        = bool
  default     = false
}

variable "force_destroy" {
  description = "Let terraform destroy delete the bucket with job and result files still in it (default false: a destroy fails while objects remain)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of the module that takes tags."
  type        = map(string)
  default     = {}
}
