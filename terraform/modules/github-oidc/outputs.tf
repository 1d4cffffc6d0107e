output "release_role_arn" {
  description = "Repository variable AWS_RELEASE_ROLE_ARN."
  value       = aws_iam_role.release.arn
}

output "deploy_role_arn" {
  description = "Environment variable AWS_DEPLOY_ROLE_ARN."
  value       = aws_iam_role.deploy.arn
}

output "registry" {
  description = "The ECR registry host (ECR_REGISTRY)."
  value       = split("/", aws_ecr_repository.this["operator"].repository_url)[0]
}
