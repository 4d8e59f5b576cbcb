output "worker_service_account" {
  description = "E-mail of the worker account (--service_account_email)."
  value       = google_service_account.worker.email
}

output "template_location" {
  description = "GCS prefix of Flex template specs (gcloud dataflow flex-template build <here>/<name>.json)."
  value       = "gs://${var.dataflow_bucket}/templates"
}

output "staging_location" {
  description = "--staging_location of the jobs."
  value       = "gs://${var.dataflow_bucket}/staging"
}

output "temp_location" {
  description = "--temp_location of the jobs."
  value       = "gs://${var.dataflow_bucket}/temp"
}

output "pipeline_options" {
  description = "The Beam pipeline options every job of this environment needs."
  value = {
    region                = var.region
    service_account_email = google_service_account.worker.email
    staging_location      = "gs://${var.dataflow_bucket}/staging"
    temp_location         = "gs://${var.dataflow_bucket}/temp"
    subnetwork            = var.subnetwork
    no_use_public_ips     = "true"
    dataflow_kms_key      = var.kms_key_name
    experiments           = "use_network_tags=${var.network_tag}"
  }
}
