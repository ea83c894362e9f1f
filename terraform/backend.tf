# dev and prod keep state in S3, configured per environment by a partial backend file:
#   terraform init -backend-config=../environments/<env>.backend.hcl
# Environments without a backend file (local) keep local state: the tooling
# (tooling/terraform.py) runs them from a copy of this module whose
# backend_override.tf selects the local backend.
terraform {
  backend "s3" {}
}
