output "fmnist_settings" {
  description = "The FMNIST_* environment of the workloads: the settings that point fmnist at this environment."
  value       = local.settings_env
}

output "service_accounts" {
  description = "E-mail of each workload's service account."
  value       = merge(module.iam.emails, { dataflow = module.dataflow.worker_service_account })
}

output "workload_identity_provider" {
  description = "For google-github-actions/auth: workload_identity_provider."
  value       = module.iam.workload_identity_provider
}

output "api_url" {
  description = "URL of the prediction API."
  value       = module.cloud_run.uri
}

output "buckets" {
  description = "Bucket names by purpose."
  value       = module.storage.names
}

output "image_prefix" {
  description = "Where CI pushes images."
  value       = module.artifact_registry.image_prefix
}

output "kms_keys" {
  description = "KMS key ids by use."
  value       = module.kms.key_ids
}

output "dataflow_pipeline_options" {
  description = "Beam pipeline options of Dataflow jobs in this environment."
  value       = module.dataflow.pipeline_options
}

output "secrets" {
  description = "Secret ids whose versions must be added by hand (gcloud secrets versions add)."
  value       = module.secrets.secret_ids
}
