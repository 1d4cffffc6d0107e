# The three IRSA roles of one EventPipeline, with the minimal policies of operator/README.md ("Minimal IAM
# policies"), for the ServiceAccounts the operator creates in the pipeline's namespace:
#   <pipeline>-ingest     spec.aws.ingestRoleArn     PutRecords, ListShards, DescribeStreamSummary (/ready)
#   <pipeline>-consumer   spec.aws.consumerRoleArn   read the stream; write, and (maintenance: the CronJob runs as
#                                                    this account) delete, under the namespace's table prefix;
#                                                    Glue table updates; the DynamoDB lease table if used
#   <pipeline>-transform  spec.aws.transformRoleArn  read the tables (dbt, GX task pods)
# Plus use of the warehouse bucket's KMS key through S3 (SSE-KMS; operator/README's policies assume AWS keys).
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
  account     = data.aws_caller_identity.current.account_id
  partition   = data.aws_partition.current.partition
  glue        = "arn:${local.partition}:glue:${var.region}:${local.account}"
  bucket_arn  = "arn:${local.partition}:s3:::${var.bucket}"
  table_path  = "${var.warehouse_prefix}/${var.iceberg_namespace}.db"
  glue_tables = ["${local.glue}:catalog", "${local.glue}:database/${var.iceberg_namespace}", "${local.glue}:table/${var.iceberg_namespace}/*"]
  kms_via_s3 = {
    Effect   = "Allow"
    Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
    Resource = var.kms_key_arn
    Condition = {
      StringEquals = { "kms:ViaService" = "s3.${var.region}.amazonaws.com" }
    }
  }
  list_tables = {
    Effect    = "Allow"
    Action    = "s3:ListBucket"
    Resource  = local.bucket_arn
    Condition = { StringLike = { "s3:prefix" = "${local.table_path}/*" } }
  }

  ingest_policy = {
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["kinesis:PutRecords", "kinesis:ListShards", "kinesis:DescribeStreamSummary"]
      Resource = var.stream_arn
    }]
  }

  consumer_policy = {
    Version = "2012-10-17"
    Statement = concat([
      {
        Effect   = "Allow"
        Action   = ["kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:DescribeStreamSummary"]
        Resource = var.stream_arn
      },
      {
        Effect   = "Allow"
        Action   = ["glue:GetDatabase", "glue:GetTable", "glue:UpdateTable", "glue:CreateTable"]
        Resource = local.glue_tables
      },
      {
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = "${local.bucket_arn}/${local.table_path}/*"
      },
      local.list_tables,
      local.kms_via_s3,
      ], var.lease_table_arn == null ? [] : [{
        Effect = "Allow"
        Action = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
        "dynamodb:Scan", "dynamodb:Query", "dynamodb:DescribeTable", "dynamodb:CreateTable"]
        Resource = var.lease_table_arn
        }], var.lease_table_arn == null || var.lease_kms_key_arn == null ? [] : [{
        Effect    = "Allow"
        Action    = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        Resource  = var.lease_kms_key_arn
        Condition = { StringEquals = { "kms:ViaService" = "dynamodb.${var.region}.amazonaws.com" } }
    }])
  }

  transform_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables"]
        Resource = local.glue_tables
      },
      {
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = "${local.bucket_arn}/${local.table_path}/*"
      },
      local.list_tables,
      merge(local.kms_via_s3, { Action = ["kms:Decrypt"] }),
    ]
  }

  roles = {
    ingest    = jsonencode(local.ingest_policy)
    consumer  = jsonencode(local.consumer_policy)
    transform = jsonencode(local.transform_policy)
  }
}

module "role" {
  source   = "../irsa-role"
  for_each = local.roles

  name              = "${var.role_name_prefix}${var.pipeline}-${each.key}"
  oidc_provider_arn = var.oidc_provider_arn
  oidc_issuer       = var.oidc_issuer
  namespace         = var.k8s_namespace
  service_account   = "${var.pipeline}-${each.key}"
  policy_json       = each.value
  tags              = var.tags
}
