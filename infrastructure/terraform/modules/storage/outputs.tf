output "names" {
  description = "Bucket name by purpose: data-lake, artifacts, pipeline-root, dataflow, access-logs."
  value = merge(
    { for k, v in google_storage_bucket.this : k => v.name },
    { access-logs = google_storage_bucket.access_logs.name },
  )
}

output "urls" {
  description = "gs:// URL of each bucket, by purpose."
  value = merge(
    { for k, v in google_storage_bucket.this : k => v.url },
    { access-logs = google_storage_bucket.access_logs.url },
  )
}
