output "trigger_ids" {
  description = "Id of each trigger: main, release."
  value       = { for k, v in google_cloudbuild_trigger.this : k => v.trigger_id }
}
