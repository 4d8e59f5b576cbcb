# The Docker repository of the platform's images (fmnist-api, fmnist-monitor, fmnist-trainer,
# fmnist-batch), CMEK-encrypted, with immutable tags and cleanup policies: untagged images go
# after a week, anything after the retention period, except the most recent versions and
# release tags (v*).

resource "google_artifact_registry_repository" "this" {
  project                = var.project_id
  location               = var.location
  repository_id          = var.repository_id
  description            = "fmnist container images."
  format                 = "DOCKER"
  kms_key_name           = var.kms_key_name
  labels                 = var.labels
  cleanup_policy_dry_run = var.cleanup_dry_run

  docker_config {
    immutable_tags = var.immutable_tags
  }

  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "${var.untagged_retention_days * 86400}s"
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "${var.retention_days * 86400}s"
    }
  }

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.keep_recent_versions
    }
  }

  cleanup_policies {
    id     = "keep-releases"
    action = "KEEP"
    condition {
      tag_state    = "TAGGED"
      tag_prefixes = ["v"]
    }
  }
}

resource "google_artifact_registry_repository_iam_member" "this" {
  for_each = var.repository_iam

  project    = var.project_id
  location   = google_artifact_registry_repository.this.location
  repository = google_artifact_registry_repository.this.name
  role       = each.value.role
  member     = each.value.member
}
