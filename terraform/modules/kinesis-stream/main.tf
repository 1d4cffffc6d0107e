# The pipeline's Kinesis data stream (stream.name in the EventPipeline; stream.create: false when this module
# makes it). Encrypted at rest with KMS: AWS's managed key by default, or a customer key.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

resource "aws_kinesis_stream" "this" {
  name             = var.name
  retention_period = var.retention_hours
  # On-demand scales its own shards; provisioned keeps shard_count (the operator reports, never reshards).
  shard_count = var.mode == "PROVISIONED" ? var.shard_count : null

  stream_mode_details {
    stream_mode = var.mode
  }

  encryption_type = "KMS"
  kms_key_id      = var.kms_key_id

  tags = var.tags
}
