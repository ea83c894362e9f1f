terraform {
  required_version = ">= 1.11" # write-only attributes (the signing secret's value_wo)

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.90, < 6.0" # ephemeral aws_secretsmanager_random_password, value_wo
    }
  }
}
