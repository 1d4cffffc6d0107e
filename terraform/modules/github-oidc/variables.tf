variable "repository" {
  description = "GitHub repository, owner/name."
  type        = string
}

variable "region" {
  description = "Region of the ECR repositories."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer KMS key encrypting the ECR repositories."
  type        = string
}

variable "eks_cluster_arns" {
  description = "The clusters the deploy workflow may describe (staging, production)."
  type        = list(string)
}

variable "deploy_environments" {
  description = "GitHub environments allowed to assume the deploy role."
  type        = list(string)
  default     = ["staging", "production"]
}

variable "create_provider" {
  description = "Create the account's GitHub OIDC provider (one per account; false when it exists)."
  type        = bool
  default     = true
}

variable "thumbprints" {
  description = "Thumbprints of the provider's certificate chain (AWS no longer checks them for GitHub; the API still takes the field)."
  type        = list(string)
  default     = ["6938fd4d98bab03faadb97b34396831e3780aea1"]
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
