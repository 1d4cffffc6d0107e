variable "region" {
  description = "AWS region of the streams, bucket and Glue catalog."
  type        = string
}

variable "bucket" {
  description = "Warehouse bucket (Iceberg metadata of the tables the operator creates)."
  type        = string
}

variable "kms_key_arn" {
  description = "The warehouse bucket's KMS key."
  type        = string
}

variable "stream_prefix" {
  description = "Streams the operator may create and delete: names starting with this (its default names are eventpipe-<pipeline>)."
  type        = string
  default     = "eventpipe-"
}

variable "k8s_namespace" {
  description = "The chart's release namespace."
  type        = string
  default     = "eventpipe-system"
}

variable "service_account" {
  description = "The chart's ServiceAccount: <release>-eventpipe-operator (release eventpipe: eventpipe-eventpipe-operator)."
  type        = string
  default     = "eventpipe-eventpipe-operator"
}

variable "role_name" {
  description = "Role name."
  type        = string
  default     = "eventpipe-operator"
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_issuer" {
  description = "The cluster's OIDC issuer without https://."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
