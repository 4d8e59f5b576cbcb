output "fmnist_settings" {
  description = "FMNIST_* settings of the workloads in this environment."
  value       = module.platform.fmnist_settings
}

output "service_accounts" {
  description = "Service account e-mails by workload."
  value       = module.platform.service_accounts
}

output "workload_identity_provider" {
  description = "workload_identity_provider for google-github-actions/auth."
  value       = module.platform.workload_identity_provider
}

output "api_url" {
  description = "URL of the prediction API."
  value       = module.platform.api_url
}

output "buckets" {
  description = "Bucket names by purpose."
  value       = module.platform.buckets
}

output "image_prefix" {
  description = "Where CI pushes images."
  value       = module.platform.image_prefix
}

output "dataflow_pipeline_options" {
  description = "Beam pipeline options of Dataflow jobs."
  value       = module.platform.dataflow_pipeline_options
}

output "secrets" {
  description = "Secrets whose values must be added by hand."
  value       = module.platform.secrets
}
