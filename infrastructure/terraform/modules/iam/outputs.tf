output "emails" {
  description = "E-mail of each workload's service account: serving, pipelines, ci_deployer, monitor."
  value       = { for k, v in google_service_account.this : k => v.email }
}

output "members" {
  description = "IAM member string (serviceAccount:<email>) of each workload's service account."
  value       = { for k, v in google_service_account.this : k => v.member }
}

output "ids" {
  description = "Resource name of each service account (projects/<p>/serviceAccounts/<email>)."
  value       = { for k, v in google_service_account.this : k => v.name }
}

output "workload_identity_provider" {
  description = "Full name of the GitHub OIDC provider (the workload_identity_provider input of google-github-actions/auth)."
  value       = google_iam_workload_identity_pool_provider.github.name
}
