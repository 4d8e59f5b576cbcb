output "job_names" {
  description = "Name of each Cloud Run job, by short name."
  value       = { for k, v in google_cloud_run_v2_job.this : k => v.name }
}

output "schedule_ids" {
  description = "Id of each Cloud Scheduler job, by short name."
  value       = { for k, v in google_cloud_scheduler_job.this : k => v.id }
}
