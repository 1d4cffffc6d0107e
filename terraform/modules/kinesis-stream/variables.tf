variable "name" {
  description = "Stream name: the EventPipeline's spec.stream.name (the operator's default is eventpipe-<pipeline>)."
  type        = string
}

variable "mode" {
  description = "ON_DEMAND or PROVISIONED."
  type        = string
  default     = "ON_DEMAND"
  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.mode)
    error_message = "mode is ON_DEMAND or PROVISIONED."
  }
}

variable "shard_count" {
  description = "Shards when mode is PROVISIONED (the consumers scale up to this many pods)."
  type        = number
  default     = 4
}

variable "retention_hours" {
  description = "Record retention (24 to 8760 hours): how long a stopped consumer can be behind."
  type        = number
  default     = 48
}

variable "kms_key_id" {
  description = "KMS key for encryption at rest: alias/aws/kinesis (AWS managed) or a customer key ARN/alias."
  type        = string
  default     = "alias/aws/kinesis"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
