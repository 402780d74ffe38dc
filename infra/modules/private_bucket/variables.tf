variable "create" {
  description = "Create the bucket (and its settings and policy); false creates nothing and the outputs are null. The calling module passes its own create flag."
  type        = bool
  default     = true
}

variable "name" {
  description = "Bucket name, or with use_name_prefix the name the bucket is named from (<name>-<suffix>, the prefix cut to 37 characters, S3's limit for bucket_prefix). The calling module adds its purpose (<deployment>-claim-checks, <deployment>-fanout). Lowercase, as S3 bucket names must be."
  type        = string

  validation {
    # S3 bucket naming: 3-63 characters, starting and ending with a letter or digit.
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.name))
    error_message = "name must be 3-63 characters of a-z, 0-9, '.' or '-', starting and ending with a letter or digit (S3 bucket naming)."
  }
}

variable "use_name_prefix" {
  description = "Name the bucket from a prefix (<name>-<suffix>) instead of the fixed name <name>, so two deployments (S3 bucket names are global across accounts and regions) do not collide."
  type        = bool
  default     = true
}

variable "expiring_prefixes" {
  description = "Key prefixes (without the trailing '/') whose objects expire after expiration_days, one lifecycle rule expire-<prefix> each, in this order. Objects elsewhere in the bucket never expire. The calling module names the prefixes its code writes."
  type        = list(string)

  validation {
    condition     = length(var.expiring_prefixes) > 0 && length(distinct(var.expiring_prefixes)) == length(var.expiring_prefixes) && alltrue([for p in var.expiring_prefixes : can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$", p))])
    error_message = "expiring_prefixes must be one or more distinct key prefixes of S3's safe characters, without a leading or trailing '/' (e.g. \"claim-checks\")."
  }
}

variable "expiration_days" {
  description = "Days after which an object under expiring_prefixes expires; with versioning on, noncurrent versions expire after as many days too."
  type        = number
  default     = 30

  validation {
    condition     = var.expiration_days >= 1 && var.expiration_days <= 3650 && floor(var.expiration_days) == var.expiration_days
    error_message = "expiration_days must be a whole number of days between 1 and 3650."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key for the bucket's default encryption (SSE-KMS, with an S3 Bucket Key). null (default) uses SSE-S3 (AES256). Whoever reads or writes the objects needs the key too: the calling module says who."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (not a key ID or alias) or null."
  }
}

variable "versioning" {
  description = "Enable object versioning (default false: the callers' objects are transient and written once). Once enabled, S3 versioning can only be suspended, not removed."
  type        = bool
  default     = false
}

variable "force_destroy" {
  description = "Let terraform destroy delete the bucket with objects still in it (default false: a destroy fails while objects remain)."
  type        = bool
  default     = false
}

variable "policy_documents" {
  description = "Further bucket policy documents (JSON, e.g. an aws_iam_policy_document of the calling module) merged into the bucket policy. The statement denying requests without TLS (sid DenyInsecureTransport) always stays: a statement of that sid here is replaced by it. Statements must have distinct sids. Default none."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for d in var.policy_documents : can(jsondecode(d).Statement)])
    error_message = "policy_documents must be IAM policy documents in JSON (with a Statement)."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module that takes tags (the bucket)."
  type        = map(string)
  default     = {}
}
