# State in a GCS bucket (versioned, CMEK, created once by hand: docs/gcp.md). The bucket is
# given at init time so no project name is committed:
#   terraform init -backend-config="bucket=<state bucket>"
# (or -backend-config=backend.hcl, see backend.hcl.example).
terraform {
  backend "gcs" {
    prefix = "fmnist/dev"
  }
}
