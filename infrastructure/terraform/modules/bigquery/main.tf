# The analytics dataset (CMEK) and its tables, each partitioned by day on its time column and
# clustered by model_version where the table has one. The schemas of the tables the code
# writes (prediction_events, feedback_events) are read from the code's own files in
# src/fmnist/analytics/schemas, so the code and the warehouse share one definition; the other
# tables' schemas live in ./schemas.

locals {
  code_schemas = "${path.module}/../../../../src/fmnist/analytics/schemas"

  tables = {
    prediction_events = {
      description     = "Every prediction served (API, UI, batch), from the predictions topic."
      schema          = file("${local.code_schemas}/prediction_events.json")
      partition_field = "time"
      clustering      = ["model_version", "predicted_class"]
      expiration_days = var.event_retention_days
    }
    feedback_events = {
      description     = "Feedback on predictions (POST /v1/feedback), from the feedback topic."
      schema          = file("${local.code_schemas}/feedback_events.json")
      partition_field = "time"
      clustering      = ["model_version"]
      expiration_days = var.event_retention_days
    }
    features = {
      description     = "Per-prediction input features; the source of the optional Vertex AI Feature Store view."
      schema          = file("${path.module}/schemas/features.json")
      partition_field = "feature_timestamp"
      clustering      = ["model_version"]
      expiration_days = var.event_retention_days
    }
    kpis = {
      description     = "Daily KPIs materialised from the named query kpis_daily."
      schema          = file("${path.module}/schemas/kpis.json")
      partition_field = "day"
      clustering      = []
      expiration_days = null
    }
    drift_history = {
      description     = "One row per drift check (DriftResult) with its tests."
      schema          = file("${path.module}/schemas/drift_history.json")
      partition_field = "checked_at"
      clustering      = ["model_version"]
      expiration_days = null
    }
    experiments = {
      description     = "Training and benchmark runs (leaderboard rows)."
      schema          = file("${path.module}/schemas/experiments.json")
      partition_field = "measured_at"
      clustering      = ["model_version"]
      expiration_days = null
    }
  }
}

resource "google_bigquery_dataset" "this" {
  project                    = var.project_id
  dataset_id                 = var.dataset_id
  friendly_name              = "fmnist analytics"
  description                = "Prediction and feedback events, features, KPIs, drift history and experiments of fmnist."
  location                   = var.location
  delete_contents_on_destroy = false
  labels                     = var.labels

  default_encryption_configuration {
    kms_key_name = var.kms_key_name
  }
}

resource "google_bigquery_table" "this" {
  for_each = local.tables

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.this.dataset_id
  table_id            = each.key
  description         = each.value.description
  schema              = each.value.schema
  deletion_protection = var.deletion_protection
  clustering          = length(each.value.clustering) > 0 ? each.value.clustering : null
  labels              = merge(var.labels, { table = replace(each.key, "_", "-") })

  time_partitioning {
    type          = "DAY"
    field         = each.value.partition_field
    expiration_ms = each.value.expiration_days == null ? null : each.value.expiration_days * 86400000
  }

  encryption_configuration {
    kms_key_name = var.kms_key_name
  }
}

resource "google_bigquery_dataset_iam_member" "this" {
  for_each = var.dataset_iam

  project    = var.project_id
  dataset_id = google_bigquery_dataset.this.dataset_id
  role       = each.value.role
  member     = each.value.member
}
