output "role_arn" {
  description = "The chart's serviceAccount.roleArn."
  value       = module.role.arn
}
