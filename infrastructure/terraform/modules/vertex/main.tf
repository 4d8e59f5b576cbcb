# Vertex AI for the gcp profile: the private online endpoint (CMEK, in the VPC) models are deployed to, read access
# to the Model Registry for the serving account, the pipelines account as the identity of
# Vertex AI Pipelines and custom jobs (who may submit as it), and an optional Feature Store
# (online store + a feature view syncing the BigQuery features table), behind
# enable_feature_store.

resource "google_vertex_ai_endpoint" "this" {
  project      = var.project_id
  name         = var.endpoint_id
  display_name = var.endpoint_display_name
  description  = "fmnist online predictions (models from the Vertex AI Model Registry)."
  location     = var.region
  region       = var.region
  labels       = var.labels

  # Private endpoint: reachable only from the peered VPC (private services access).
  network = var.network

  encryption_spec {
    kms_key_name = var.kms_key_name
  }
}

# Model Registry read access: Vertex AI has no per-model IAM, so the viewer role is granted on
# the project (read-only: list and get models, endpoints, pipeline runs).
resource "google_project_iam_member" "registry_readers" {
  for_each = var.registry_readers

  project = var.project_id
  role    = "roles/aiplatform.viewer"
  member  = each.value
}

# Pipeline and custom jobs run as the pipelines account: these members may submit them.
resource "google_service_account_iam_member" "pipeline_submitters" {
  for_each = var.pipeline_submitters

  service_account_id = "projects/${var.project_id}/serviceAccounts/${var.pipelines_service_account}"
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}

# --- optional Feature Store ----------------------------------------------------------------

resource "google_vertex_ai_feature_online_store" "this" {
  provider = google-beta
  count    = var.enable_feature_store ? 1 : 0

  project       = var.project_id
  name          = var.feature_store_name
  region        = var.region
  labels        = var.labels
  force_destroy = false

  optimized {}

  encryption_spec {
    kms_key_name = var.kms_key_name
  }
}

resource "google_vertex_ai_feature_online_store_featureview" "features" {
  count = var.enable_feature_store ? 1 : 0

  project              = var.project_id
  name                 = "prediction_features"
  region               = var.region
  feature_online_store = google_vertex_ai_feature_online_store.this[0].name
  labels               = var.labels

  sync_config {
    cron = var.feature_sync_cron
  }

  big_query_source {
    uri               = var.features_table_uri
    entity_id_columns = ["entity_id"]
  }

  lifecycle {
    precondition {
      condition     = var.features_table_uri != null
      error_message = "enable_feature_store needs features_table_uri (bq://project.dataset.features)."
    }
  }
}
