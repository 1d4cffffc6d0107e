variable "name" {
  description = "Role name."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_issuer" {
  description = "The cluster's OIDC issuer without https:// (oidc.eks.REGION.amazonaws.com/id/ID)."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the ServiceAccount."
  type        = string
}

variable "service_account" {
  description = "Kubernetes ServiceAccount name."
  type        = string
}

variable "policy_json" {
  description = "The role's inline policy (JSON)."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
