variable "pipeline" {
  description = "EventPipeline name (metadata.name): the ServiceAccounts are <pipeline>-ingest/-consumer/-transform."
  type        = string
}

variable "k8s_namespace" {
  description = "Kubernetes namespace of the EventPipeline."
  type        = string
}

variable "region" {
  description = "AWS region of the stream, bucket and Glue catalog."
  type        = string
}

variable "stream_arn" {
  description = "The pipeline's Kinesis stream."
  type        = string
}

variable "bucket" {
  description = "Warehouse bucket."
  type        = string
}

variable "warehouse_prefix" {
  description = "Warehouse prefix in the bucket."
  type        = string
  default     = "warehouse"
}

variable "iceberg_namespace" {
  description = "spec.iceberg.namespace (Glue database); its tables live under WAREHOUSE_PREFIX/NAMESPACE.db/."
  type        = string
}

variable "kms_key_arn" {
  description = "The warehouse bucket's KMS key."
  type        = string
}

variable "lease_table_arn" {
  description = "DynamoDB lease table (consumer.leaseStore: dynamodb); null with the SQL lease store."
  type        = string
  default     = null
}

variable "lease_kms_key_arn" {
  description = "Customer KMS key of the lease table (lease-table's kms_key_arn); null: none."
  type        = string
  default     = null
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_issuer" {
  description = "The cluster's OIDC issuer without https://."
  type        = string
}

variable "role_name_prefix" {
  description = "Prefix of the role names (<prefix><pipeline>-<component>)."
  type        = string
  default     = "eventpipe-"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
