# The operator's IRSA role (chart value serviceAccount.roleArn), with operator/README.md's minimal operator
# policy: create/describe (and, for deletionPolicy: Delete, delete) streams named <stream_prefix>*, create and
# read Glue databases and tables, write Iceberg metadata files when it creates tables. Its ServiceAccount is the
# chart's full name: <release>-eventpipe-operator (or the release name when it contains eventpipe-operator).
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  glue      = "arn:${local.partition}:glue:${var.region}:${local.account}"
  policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Effect = "Allow"
        Action = ["kinesis:CreateStream", "kinesis:DescribeStreamSummary", "kinesis:ListShards",
        "kinesis:IncreaseStreamRetentionPeriod", "kinesis:DeleteStream"]
        Resource = "arn:${local.partition}:kinesis:${var.region}:${local.account}:stream/${var.stream_prefix}*"
      },
      {
        Effect = "Allow"
        Action = ["glue:GetDatabase", "glue:CreateDatabase", "glue:DeleteDatabase", "glue:GetTable", "glue:GetTables",
        "glue:CreateTable", "glue:DeleteTable"]
        Resource = ["${local.glue}:catalog", "${local.glue}:database/*", "${local.glue}:table/*/*"]
      },
      {
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:GetObject"]
        Resource = "arn:${local.partition}:s3:::${var.bucket}/*/metadata/*"
      },
      {
        Effect    = "Allow"
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = var.kms_key_arn
        Condition = { StringEquals = { "kms:ViaService" = "s3.${var.region}.amazonaws.com" } }
      },
    ]
  }
}

module "role" {
  source = "../irsa-role"

  name              = var.role_name
  oidc_provider_arn = var.oidc_provider_arn
  oidc_issuer       = var.oidc_issuer
  namespace         = var.k8s_namespace
  service_account   = var.service_account
  policy_json       = jsonencode(local.policy)
  tags              = var.tags
}
