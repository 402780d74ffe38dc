variable "create" {
  description = "Create the claim-check bucket (and its settings and policy); false creates nothing (outputs are null) and the workers fail outputs too large for a result message with Bridge.OutputTooLarge."
  type        = bool
  default     = true
}

variable "name" {
  description = "Deployment name the bucket is named from: <name>-claim-checks-<suffix> with use_name_prefix (the prefix cut to 37 characters, S3's limit for bucket_prefix), else <name>-claim-checks. Lowercase, as S3 bucket names must be."
  type        = string
  default     = "callback-bridge"

  validation {
    # 63 is S3's limit for a bucket name; "-claim-checks" is 13 characters.
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{0,49}$", var.name))
    error_message = "name must be 1-50 characters of a-z, 0-9, '.' or '-', starting with a letter or digit (S3 bucket naming)."
  }
}

variable "use_name_prefix" {
  description = "Name the bucket from a prefix (<name>-claim-checks-<suffix>) instead of the fixed name <name>-claim-checks, so two deployments (S3 bucket names are global across accounts and regions) do not collide."
  type        = bool
  default     = true
}

variable "expiration_days" {
  description = "Days after which a claim-checked output (an object under claim-checks/) expires. Outputs are read by the execution that produced them and its downstream states; keep this longer than the longest execution plus whatever reads its output afterwards (default 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.expiration_days >= 1 && var.expiration_days <= 3650 && floor(var.expiration_days) == var.expiration_days
    error_message = "expiration_days must be a whole number of days between 1 and 3650."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key for the bucket's default encryption (SSE-KMS, with an S3 Bucket Key). null (default) uses SSE-S3 (AES256), which is what the worker requests on every PutObject. Pass the same ARN to the consumers module (claim_check_kms_key_arn) so the workers' role gets kms:GenerateDataKey on it; the key policy must allow that role."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (not a key ID or alias) or null."
  }
}

variable "versioning" {
  description = "Enable object versioning. Off by default: claim checks are written once under a content-addressed key (<execution>/<job id>/<sha256>.json), a rewrite stores the same bytes, and versions would only keep expired outputs longer. When on, noncurrent versions expire after expiration_days as well."
  type        = bool
  default     = false
}

variable "force_destroy" {
  description = "Let terraform destroy delete the bucket with the claim checks still in it (default false: a destroy fails while outputs remain)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of the module that takes tags."
  type        = map(string)
  default     = {}
}
