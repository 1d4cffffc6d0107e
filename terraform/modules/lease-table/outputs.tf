output "arn" {
  description = "Table ARN (pipeline-iam's lease_table_arn)."
  value       = aws_dynamodb_table.this.arn
}

output "name" {
  description = "Table name."
  value       = aws_dynamodb_table.this.name
}
