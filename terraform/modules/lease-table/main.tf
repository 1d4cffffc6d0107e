# Optional: the consumers' DynamoDB lease table (consumer.leaseStore: dynamodb), made ahead instead of by the
# consumers (they create it when missing, with this same shape: eventpipe_consumer.leases). Its name must be the
# operator's: eventpipe_leases_<k8s namespace>_<pipeline> (cut to 63 characters with a hash when longer).
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

resource "aws_dynamodb_table" "this" {
  name         = var.name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "lease_key"

  attribute {
    name = "lease_key"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection
  tags                        = var.tags
}
