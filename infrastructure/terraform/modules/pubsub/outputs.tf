output "topic_ids" {
  description = "Resource id of each event topic, by short name."
  value       = { for k, v in google_pubsub_topic.this : k => v.id }
}

output "dead_letter_topic_ids" {
  description = "Resource id of each dead-letter topic, by short name of its source."
  value       = { for k, v in google_pubsub_topic.dead_letter : k => v.id }
}

output "subscription_ids" {
  description = "Resource id of each analytics subscription, by topic short name."
  value       = { for k, v in google_pubsub_subscription.this : k => v.id }
}
