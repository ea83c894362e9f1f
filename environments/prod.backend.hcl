# Partial S3 backend configuration of the prod environment:
#   terraform -chdir=terraform init -backend-config=../environments/prod.backend.hcl
# Create the state bucket once (versioned, encrypted, public access blocked) and replace
# the placeholder bucket name (`invoke plan` and `invoke deploy` refuse it until then).
# Locking uses S3 lock files (Terraform >= 1.10).
bucket       = "jobs-tfstate-CHANGE-ME"
key          = "serverless-job-stack/prod/terraform.tfstate"
region       = "us-east-1"
encrypt      = true
use_lockfile = true
