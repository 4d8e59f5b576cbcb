# The platform's buckets: the data lake, model and run artifacts, the Vertex AI pipeline root,
# Dataflow staging/temp/templates and the access-log bucket that records access to all others.
# Every bucket: uniform bucket-level access, public access prevention enforced, CMEK,
# versioning, lifecycle rules; access is granted per bucket (bucket_iam), never project-wide.

locals {
  buckets = {
    data-lake = {
      versioning = true
      rules = [
        { action = "SetStorageClass", storage_class = "NEARLINE", age = 90, noncurrent_days = null, newer_versions = null, prefixes = [] },
        { action = "Delete", storage_class = null, age = null, noncurrent_days = var.noncurrent_retention_days, newer_versions = null, prefixes = [] },
        { action = "Delete", storage_class = null, age = null, noncurrent_days = null, newer_versions = 5, prefixes = [] },
      ]
    }
    artifacts = {
      versioning = true
      rules = [
        { action = "Delete", storage_class = null, age = null, noncurrent_days = var.noncurrent_retention_days, newer_versions = null, prefixes = [] },
        { action = "Delete", storage_class = null, age = null, noncurrent_days = null, newer_versions = 5, prefixes = [] },
      ]
    }
    pipeline-root = {
      versioning = true
      rules = [
        { action = "Delete", storage_class = null, age = var.pipeline_root_retention_days, noncurrent_days = null, newer_versions = null, prefixes = [] },
        { action = "Delete", storage_class = null, age = null, noncurrent_days = 7, newer_versions = null, prefixes = [] },
      ]
    }
    dataflow = {
      versioning = true
      rules = [
        { action = "Delete", storage_class = null, age = 7, noncurrent_days = null, newer_versions = null, prefixes = ["staging/", "temp/"] },
        { action = "Delete", storage_class = null, age = null, noncurrent_days = 30, newer_versions = null, prefixes = [] },
      ]
    }
  }
}

resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:This bucket receives the access logs of every other bucket; logging it into itself would loop.
  project                     = var.project_id
  name                        = "${var.name_prefix}-access-logs"
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = merge(var.labels, { bucket = "access-logs" })

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = var.kms_key_name
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_seconds
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      age = var.access_log_retention_days
    }
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      days_since_noncurrent_time = 7
    }
  }
}

resource "google_storage_bucket" "this" {
  for_each = local.buckets

  project                     = var.project_id
  name                        = "${var.name_prefix}-${each.key}"
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = merge(var.labels, { bucket = each.key })

  versioning {
    enabled = each.value.versioning
  }

  encryption {
    default_kms_key_name = var.kms_key_name
  }

  logging {
    log_bucket        = google_storage_bucket.access_logs.name
    log_object_prefix = each.key
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_seconds
  }

  dynamic "lifecycle_rule" {
    for_each = each.value.rules
    content {
      action {
        type          = lifecycle_rule.value.action
        storage_class = lifecycle_rule.value.storage_class
      }
      condition {
        age                        = lifecycle_rule.value.age
        days_since_noncurrent_time = lifecycle_rule.value.noncurrent_days
        num_newer_versions         = lifecycle_rule.value.newer_versions
        matches_prefix             = lifecycle_rule.value.prefixes
        with_state                 = lifecycle_rule.value.noncurrent_days != null || lifecycle_rule.value.newer_versions != null ? "ARCHIVED" : "ANY"
      }
    }
  }
}

# Storage writes its own access logs into the log bucket.
resource "google_storage_bucket_iam_member" "access_log_writer" {
  bucket = google_storage_bucket.access_logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}

resource "google_storage_bucket_iam_member" "this" {
  for_each = var.bucket_iam

  bucket = google_storage_bucket.this[each.value.bucket].name
  role   = each.value.role
  member = each.value.member
}
