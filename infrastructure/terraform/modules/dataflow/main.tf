# What Dataflow jobs of the platform (the Beam batch-prediction and snapshot ETL, launched
# from Flex templates) need: a worker service account with the worker role and access to the
# buckets it reads and writes, and the GCS locations of Flex template specs, staging and temp
# files (prefixes of the dataflow bucket, whose lifecycle clears staging/ and temp/).
# Workers run in the private subnet, without public IPs, with CMEK (the Dataflow and Compute
# Engine service agents hold the key).

resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-dataflow"
  display_name = "fmnist Dataflow workers"
  description  = "Dataflow worker VMs of fmnist batch jobs."
}

resource "google_project_iam_member" "worker" {
  for_each = toset([
    "roles/dataflow.worker",
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.worker.member
}

resource "google_storage_bucket_iam_member" "worker" {
  for_each = {
    dataflow  = { bucket = var.dataflow_bucket, role = "roles/storage.objectUser" }
    data_lake = { bucket = var.data_lake_bucket, role = "roles/storage.objectUser" }
    artifacts = { bucket = var.artifacts_bucket, role = "roles/storage.objectViewer" }
  }

  bucket = each.value.bucket
  role   = each.value.role
  member = google_service_account.worker.member
}

resource "google_artifact_registry_repository_iam_member" "worker" {
  project    = var.project_id
  location   = var.region
  repository = var.repository
  role       = "roles/artifactregistry.reader"
  member     = google_service_account.worker.member
}

# Launchers (the pipelines account) start jobs whose workers run as this account.
resource "google_service_account_iam_member" "launcher" {
  for_each = var.launchers

  service_account_id = google_service_account.worker.name
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}
