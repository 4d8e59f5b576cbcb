# The Google APIs the platform uses, and the service agents (Google-managed service accounts)
# that need access to the CMEK keys. The agents' e-mails are derived from the project number,
# and google_project_service_identity makes sure each exists before a key grant names it.

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "this" {
  for_each = toset(var.services)

  project                    = var.project_id
  service                    = each.value
  disable_on_destroy         = false
  disable_dependent_services = false
}

resource "google_project_service_identity" "this" {
  provider = google-beta
  for_each = toset(var.service_identities)

  project = var.project_id
  service = each.value

  depends_on = [google_project_service.this]
}

data "google_storage_project_service_account" "gcs" {
  project = var.project_id

  depends_on = [google_project_service.this]
}

data "google_bigquery_default_service_account" "bq" {
  project = var.project_id

  depends_on = [google_project_service.this]
}

locals {
  number = data.google_project.this.number

  service_agents = {
    storage           = data.google_storage_project_service_account.gcs.email_address
    bigquery          = data.google_bigquery_default_service_account.bq.email
    pubsub            = "service-${local.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    artifact_registry = "service-${local.number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
    secret_manager    = "service-${local.number}@gcp-sa-secretmanager.iam.gserviceaccount.com"
    vertex_ai         = "service-${local.number}@gcp-sa-aiplatform.iam.gserviceaccount.com"
    cloud_run         = "service-${local.number}@serverless-robot-prod.iam.gserviceaccount.com"
    dataflow          = "service-${local.number}@dataflow-service-producer-prod.iam.gserviceaccount.com"
    compute           = "service-${local.number}@compute-system.iam.gserviceaccount.com"
    monitoring        = "service-${local.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
    cloud_scheduler   = "service-${local.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
  }
}
