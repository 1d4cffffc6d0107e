output "arn" {
  description = "Role ARN (the ServiceAccount's eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.this.arn
}

output "name" {
  description = "Role name."
  value       = aws_iam_role.this.name
}
