# Example root module: everything one EventPipeline needs on AWS beside an existing EKS cluster (with its IAM OIDC
# provider for IRSA). `tofu apply` (or `terraform apply`) here, then install the chart and apply the pipeline
# with the outputs (docs/deploy.md walks through it; `tofu output` prints them).
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { "app.kubernetes.io/part-of" = "eventpipe", "eventpipe.io/pipeline" = var.pipeline }
  }
}

data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

data "aws_iam_openid_connect_provider" "cluster" {
  url = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
}

data "aws_caller_identity" "current" {}

locals {
  oidc_issuer = trimprefix(data.aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://")
  stream_name = "eventpipe-${var.pipeline}"
  # The operator's lease table name (manifests.lease_table): eventpipe_leases_<k8s namespace>_<pipeline>.
  lease_table = "eventpipe_leases_${var.k8s_namespace}_${var.pipeline}"
}

# One customer key for what is not the warehouse: the lease table and the job store.
resource "aws_kms_key" "platform" {
  description             = "eventpipe ${var.pipeline}: lease table and job store"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

module "stream" {
  source          = "../../modules/kinesis-stream"
  name            = local.stream_name
  mode            = var.stream_mode
  shard_count     = var.shard_count
  retention_hours = var.retention_hours
}

module "warehouse" {
  source            = "../../modules/warehouse-bucket"
  bucket_name       = var.bucket_name
  region            = var.region
  access_log_bucket = var.access_log_bucket
}

module "catalog" {
  source           = "../../modules/glue-catalog"
  namespace        = var.iceberg_namespace
  bucket           = module.warehouse.bucket
  warehouse_prefix = var.warehouse_prefix
}

module "lease_table" {
  source      = "../../modules/lease-table"
  count       = var.dynamodb_leases ? 1 : 0
  name        = local.lease_table
  kms_key_arn = aws_kms_key.platform.arn
}

module "job_store" {
  source                    = "../../modules/job-store"
  count                     = var.create_job_store ? 1 : 0
  name                      = "eventpipe-${var.pipeline}"
  vpc_id                    = data.aws_eks_cluster.this.vpc_config[0].vpc_id
  subnet_ids                = var.database_subnet_ids
  client_security_group_ids = [data.aws_eks_cluster.this.vpc_config[0].cluster_security_group_id]
  kms_key_arn               = aws_kms_key.platform.arn
}

module "operator_iam" {
  source            = "../../modules/operator-iam"
  region            = var.region
  bucket            = module.warehouse.bucket
  kms_key_arn       = module.warehouse.kms_key_arn
  k8s_namespace     = var.operator_namespace
  service_account   = var.operator_service_account
  oidc_provider_arn = data.aws_iam_openid_connect_provider.cluster.arn
  oidc_issuer       = local.oidc_issuer
}

module "pipeline_iam" {
  source            = "../../modules/pipeline-iam"
  pipeline          = var.pipeline
  k8s_namespace     = var.k8s_namespace
  region            = var.region
  stream_arn        = module.stream.arn
  bucket            = module.warehouse.bucket
  warehouse_prefix  = var.warehouse_prefix
  iceberg_namespace = var.iceberg_namespace
  kms_key_arn       = module.warehouse.kms_key_arn
  lease_table_arn   = var.dynamodb_leases ? module.lease_table[0].arn : null
  lease_kms_key_arn = aws_kms_key.platform.arn
  oidc_provider_arn = data.aws_iam_openid_connect_provider.cluster.arn
  oidc_issuer       = local.oidc_issuer
}
