variable "name" {
  description = "eventpipe_leases_<k8s namespace>_<pipeline> (EVENTPIPE_CONSUMER_LEASE_TABLE in <pipeline>-config)."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer KMS key for encryption at rest."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse deleting the table."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
