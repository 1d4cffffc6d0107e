variable "name" {
  description = "Identifier of the instance and its companions."
  type        = string
  default     = "eventpipe-job-store"
}

variable "vpc_id" {
  description = "The EKS cluster's VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two or more availability zones)."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect (the cluster's node or cluster security group)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Customer KMS key for storage and Performance Insights."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major.minor."
  type        = string
  default     = "16.4"
}

variable "instance_class" {
  description = "Instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage" {
  description = "GiB (autoscaling up to four times this)."
  type        = number
  default     = 20
}

variable "multi_az" {
  description = "A standby in a second availability zone."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse deleting the instance."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
