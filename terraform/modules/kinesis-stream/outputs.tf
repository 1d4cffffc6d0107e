output "name" {
  description = "Stream name."
  value       = aws_kinesis_stream.this.name
}

output "arn" {
  description = "Stream ARN (the IAM policies' resource)."
  value       = aws_kinesis_stream.this.arn
}
