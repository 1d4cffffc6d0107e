output "stream_name" {
  description = "spec.stream.name (with stream.create: false)."
  value       = module.stream.name
}

output "warehouse" {
  description = "catalogProperties.warehouse."
  value       = "s3://${module.warehouse.bucket}/${var.warehouse_prefix}"
}

output "operator_role_arn" {
  description = "Chart value serviceAccount.roleArn."
  value       = module.operator_iam.role_arn
}

output "ingest_role_arn" {
  description = "spec.aws.ingestRoleArn."
  value       = module.pipeline_iam.ingest_role_arn
}

output "consumer_role_arn" {
  description = "spec.aws.consumerRoleArn."
  value       = module.pipeline_iam.consumer_role_arn
}

output "transform_role_arn" {
  description = "spec.aws.transformRoleArn."
  value       = module.pipeline_iam.transform_role_arn
}

output "job_store_address" {
  description = "Host of the job store's PostgreSQL (null without create_job_store)."
  value       = var.create_job_store ? module.job_store[0].address : null
}

output "job_store_secret_arn" {
  description = "Secrets Manager secret with the job store's generated credentials."
  value       = var.create_job_store ? module.job_store[0].master_user_secret_arn : null
}
