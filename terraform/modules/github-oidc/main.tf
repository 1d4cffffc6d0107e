# Roles for the GitHub Actions workflows, assumed through GitHub's OIDC provider (no stored keys):
#   release: push images and the chart to the ECR repositories eventpipe/*, from this repository's v* tags;
#   deploy:  describe the EKS cluster, from the repository's deploy environments (staging, production), mapped
#            to cluster access by an EKS access entry.
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
  issuer     = "token.actions.githubusercontent.com"
  account    = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  repos      = ["services", "operator", "analytics", "dashboard", "airflow", "charts/eventpipe-operator"]
  repo_arns  = [for r in local.repos : "arn:${local.partition}:ecr:${var.region}:${local.account}:repository/eventpipe/${r}"]
  oidc_arn   = var.create_provider ? aws_iam_openid_connect_provider.github[0].arn : "arn:${local.partition}:iam::${local.account}:oidc-provider/${local.issuer}"
  deploy_sub = [for e in var.deploy_environments : "repo:${var.repository}:environment:${e}"]
}

resource "aws_iam_openid_connect_provider" "github" {
  count           = var.create_provider ? 1 : 0
  url             = "https://${local.issuer}"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = var.thumbprints
  tags            = var.tags
}

resource "aws_ecr_repository" "this" {
  for_each             = toset(local.repos)
  name                 = "eventpipe/${each.value}"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
  tags = var.tags
}

data "aws_iam_policy_document" "release_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.oidc_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "${local.issuer}:sub"
      values   = ["repo:${var.repository}:ref:refs/tags/v*"]
    }
  }
}

data "aws_iam_policy_document" "deploy_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.oidc_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:sub"
      values   = local.deploy_sub
    }
  }
}

resource "aws_iam_role" "release" {
  name               = "eventpipe-github-release"
  assume_role_policy = data.aws_iam_policy_document.release_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "release" {
  name = "push-images-and-chart"
  role = aws_iam_role.release.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      # GetAuthorizationToken has no resource-level permission: "*" is the only form AWS accepts.
      { Effect = "Allow", Action = "ecr:GetAuthorizationToken", Resource = "*" },
      {
        Effect = "Allow"
        Action = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
          "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage",
        "ecr:DescribeImages", "ecr:DescribeRepositories"]
        Resource = local.repo_arns
      },
      { Effect = "Allow", Action = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"], Resource = var.kms_key_arn },
    ]
  })
}

resource "aws_iam_role" "deploy" {
  name               = "eventpipe-github-deploy"
  assume_role_policy = data.aws_iam_policy_document.deploy_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "deploy" {
  name = "describe-cluster-pull-chart"
  role = aws_iam_role.deploy.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = "eks:DescribeCluster", Resource = var.eks_cluster_arns },
      # GetAuthorizationToken has no resource-level permission: "*" is the only form AWS accepts.
      { Effect = "Allow", Action = "ecr:GetAuthorizationToken", Resource = "*" },
      {
        Effect   = "Allow"
        Action   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages"]
        Resource = local.repo_arns
      },
      { Effect = "Allow", Action = ["kms:Decrypt"], Resource = var.kms_key_arn },
    ]
  })
}
