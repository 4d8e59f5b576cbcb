# Secret Manager secrets of the API: the admin token (serving.admin_token), the hashed API keys
# file (security.keys_path) and the API key pepper. Terraform creates the secrets, never their values: versions are added out of band
# (`gcloud secrets versions add`), so no secret value is in code or in Terraform state.
# Replicated in the region only, with CMEK; only the accessors listed (the serving account)
# may read them.

resource "google_secret_manager_secret" "this" {
  for_each = var.secrets

  project   = var.project_id
  secret_id = "${var.name_prefix}-${each.key}"
  labels    = merge(var.labels, { secret = each.key })
  annotations = {
    description = each.value
  }

  replication {
    user_managed {
      replicas {
        location = var.region
        customer_managed_encryption {
          kms_key_name = var.kms_key_name
        }
      }
    }
  }
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = merge([
    for secret in keys(var.secrets) : {
      for name, member in var.accessors : "${secret}/${name}" => { secret = secret, member = member }
    }
  ]...)

  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}
