output "budget_id" {
  description = "Resource name of the budget."
  value       = google_billing_budget.this.name
}

output "alert_topic" {
  description = "Pub/Sub topic receiving the budget notifications."
  value       = google_pubsub_topic.budget.id
}
