output "bucket" {
  description = "Bucket name."
  value       = aws_s3_bucket.this.id
}

output "arn" {
  description = "Bucket ARN."
  value       = aws_s3_bucket.this.arn
}

output "kms_key_arn" {
  description = "The KMS key encrypting the objects (the IAM policies grant its use)."
  value       = aws_kms_key.this.arn
}
