output "network_id" {
  description = "The VPC's resource id."
  value       = google_compute_network.this.id
}

output "network_name" {
  description = "The VPC's name."
  value       = google_compute_network.this.name
}

output "subnetwork_id" {
  description = "The subnet's resource id."
  value       = google_compute_subnetwork.this.id
}

output "subnetwork_self_link" {
  description = "The subnet's self link (Dataflow's --subnetwork)."
  value       = google_compute_subnetwork.this.self_link
}

output "dataflow_network_tag" {
  description = "Network tag the Dataflow workers must carry."
  value       = var.dataflow_network_tag
}

output "vpc_sc_perimeter" {
  description = "Name of the VPC-SC perimeter, or null."
  value       = var.enable_vpc_sc ? google_access_context_manager_service_perimeter.this[0].name : null
}

output "private_network" {
  description = "projects/<number>/global/networks/<name>: the peered network of private Vertex AI endpoints and jobs (gcp.network)."
  value       = "projects/${var.project_number}/global/networks/${google_compute_network.this.name}"
}

output "private_services_connection" {
  description = "The private services connection (depend on it before creating private endpoints)."
  value       = google_service_networking_connection.private_services.id
}
