output "service_name" {
  description = "Name of the service."
  value       = google_cloud_run_v2_service.this.name
}

output "uri" {
  description = "HTTPS URL of the service."
  value       = google_cloud_run_v2_service.this.uri
}

output "id" {
  description = "Resource id of the service."
  value       = google_cloud_run_v2_service.this.id
}
