variable "region" {
  description = "AWS region of the cluster and of everything made here."
  type        = string
}

variable "cluster_name" {
  description = "The existing EKS cluster (its IAM OIDC provider must exist: eksctl utils associate-iam-oidc-provider)."
  type        = string
}

variable "pipeline" {
  description = "EventPipeline name."
  type        = string
  default     = "shop"
}

variable "k8s_namespace" {
  description = "Kubernetes namespace of the EventPipeline."
  type        = string
  default     = "shop"
}

variable "iceberg_namespace" {
  description = "spec.iceberg.namespace (Glue database)."
  type        = string
  default     = "shop"
}

variable "bucket_name" {
  description = "Warehouse bucket name (globally unique)."
  type        = string
}

variable "warehouse_prefix" {
  description = "Warehouse prefix: catalogProperties.warehouse = s3://BUCKET/PREFIX."
  type        = string
  default     = "warehouse"
}

variable "access_log_bucket" {
  description = "Existing bucket for S3 access logs of the warehouse; empty: none."
  type        = string
  default     = ""
}

variable "stream_mode" {
  description = "ON_DEMAND or PROVISIONED."
  type        = string
  default     = "PROVISIONED"
}

variable "shard_count" {
  description = "Shards (PROVISIONED): spec.stream.shards and the consumers' upper bound."
  type        = number
  default     = 4
}

variable "retention_hours" {
  description = "Stream retention (spec.stream.retentionHours)."
  type        = number
  default     = 48
}

variable "dynamodb_leases" {
  description = "Make the DynamoDB lease table (consumer.leaseStore: dynamodb); false: leases in the job store (sql)."
  type        = bool
  default     = false
}

variable "create_job_store" {
  description = "Make the RDS PostgreSQL job store (spec.jobStore)."
  type        = bool
  default     = true
}

variable "database_subnet_ids" {
  description = "Private subnets for the job store (with create_job_store)."
  type        = list(string)
  default     = []
}

variable "operator_namespace" {
  description = "The chart's release namespace."
  type        = string
  default     = "eventpipe-system"
}

variable "operator_service_account" {
  description = "The chart's ServiceAccount (release eventpipe: eventpipe-eventpipe-operator)."
  type        = string
  default     = "eventpipe-eventpipe-operator"
}
