variable "namespace" {
  description = "Iceberg namespace = Glue database name (spec.iceberg.namespace)."
  type        = string
}

variable "bucket" {
  description = "Warehouse bucket."
  type        = string
}

variable "warehouse_prefix" {
  description = "Prefix of the warehouse in the bucket (catalogProperties.warehouse = s3://BUCKET/PREFIX)."
  type        = string
  default     = "warehouse"
}

variable "manage_encryption_settings" {
  description = "Also set the account's Glue Data Catalog encryption (SSE-KMS with kms_key_arn). One stack only."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "KMS key for the Data Catalog encryption (with manage_encryption_settings)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
