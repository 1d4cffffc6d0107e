# The Glue database holding a pipeline's Iceberg tables (spec.iceberg.namespace), located under the warehouse
# (pyiceberg's Glue catalog places tables at <database location>/<table>). Optionally the account's Data Catalog
# encryption settings (one per account and region: set manage_encryption_settings in one stack only).
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

resource "aws_glue_catalog_database" "this" {
  name         = var.namespace
  description  = "eventpipe Iceberg namespace ${var.namespace}"
  location_uri = "s3://${var.bucket}/${var.warehouse_prefix}/${var.namespace}.db"
  tags         = var.tags
}

resource "aws_glue_data_catalog_encryption_settings" "this" {
  count = var.manage_encryption_settings ? 1 : 0
  data_catalog_encryption_settings {
    connection_password_encryption {
      return_connection_password_encrypted = true
      aws_kms_key_id                       = var.kms_key_arn
    }
    encryption_at_rest {
      catalog_encryption_mode = "SSE-KMS"
      sse_aws_kms_key_id      = var.kms_key_arn
    }
  }
}
