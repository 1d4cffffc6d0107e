output "ingest_role_arn" {
  description = "spec.aws.ingestRoleArn"
  value       = module.role["ingest"].arn
}

output "consumer_role_arn" {
  description = "spec.aws.consumerRoleArn (also the maintenance CronJob's)"
  value       = module.role["consumer"].arn
}

output "transform_role_arn" {
  description = "spec.aws.transformRoleArn"
  value       = module.role["transform"].arn
}
