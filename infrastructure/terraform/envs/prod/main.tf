# The prod environment: warm instances, HSM keys, VPC Service Controls (dry run until the
# perimeter has been observed clean), release approvals, deletion protection, OIDC limited to
# main and release tags. Only values here; everything is built by modules/platform.

module "platform" {
  source = "../../modules/platform"

  project_id          = var.project_id
  environment         = "prod"
  region              = var.region
  github_repository   = var.github_repository
  github_subjects     = ["ref:refs/heads/main", "environment:prod"]
  image_tag           = var.image_tag
  billing_account     = var.billing_account
  notification_emails = var.notification_emails
  access_policy_id    = var.access_policy_id

  subnet_cidr           = "10.20.0.0/22"
  private_services_cidr = "10.120.0.0/20"
  kms_protection_level  = "HSM"
  enable_vpc_sc         = var.access_policy_id != null
  vpc_sc_enforced       = false

  api_min_instances   = 2
  api_max_instances   = 20
  api_concurrency     = 32
  api_cpu             = "2"
  api_memory          = "2Gi"
  api_stable_revision = null
  api_canary_percent  = 10

  require_release_approval     = true
  enable_feature_store         = false
  event_retention_days         = null
  pipeline_root_retention_days = 30
  deletion_protection          = true
  schedules_paused             = false

  latency_p95_threshold_ms = 100
  error_rate_threshold     = 0.05
  availability_slo         = 0.999

  budget_amount   = 1000
  budget_currency = "EUR"
}
