output "endpoint_id" {
  description = "Resource id of the endpoint."
  value       = google_vertex_ai_endpoint.this.id
}

output "feature_online_store" {
  description = "Name of the online store, or null."
  value       = var.enable_feature_store ? google_vertex_ai_feature_online_store.this[0].name : null
}
