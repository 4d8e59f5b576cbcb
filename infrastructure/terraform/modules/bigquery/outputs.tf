output "dataset_id" {
  description = "The dataset id."
  value       = google_bigquery_dataset.this.dataset_id
}

output "table_ids" {
  description = "Full id (projects/<p>/datasets/<d>/tables/<t>) of each table."
  value       = { for k, v in google_bigquery_table.this : k => v.id }
}

output "features_table_uri" {
  description = "bq:// URI of the features table (the Feature Store view's source)."
  value       = "bq://${var.project_id}.${google_bigquery_dataset.this.dataset_id}.${google_bigquery_table.this["features"].table_id}"
}
