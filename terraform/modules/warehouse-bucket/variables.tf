variable "bucket_name" {
  description = "Bucket name (globally unique)."
  type        = string
}

variable "region" {
  description = "The bucket's region (the KMS key is used through S3 in this region only)."
  type        = string
}

variable "noncurrent_version_days" {
  description = "Days a deleted or overwritten object's old version is kept (after maintenance removed it)."
  type        = number
  default     = 7
}

variable "abort_incomplete_upload_days" {
  description = "Days before an unfinished multipart upload (a consumer killed mid-write) is aborted."
  type        = number
  default     = 3
}

variable "orphan_prefixes" {
  description = "Prefixes known to be orphaned (e.g. warehouse/old_ns.db/ of a dropped namespace): expired whole."
  type        = list(string)
  default     = []
}

variable "orphan_prefix_days" {
  description = "Days after which objects under orphan_prefixes expire."
  type        = number
  default     = 30
}

variable "access_log_bucket" {
  description = "An existing bucket receiving S3 server access logs; empty: no access logging."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
