# The dev environment: small, cheap, scale to zero, no approvals, no VPC-SC. Only values here;
# everything is built by modules/platform.

module "platform" {
  source = "../../modules/platform"

  project_id          = var.project_id
  environment         = "dev"
  region              = var.region
  github_repository   = var.github_repository
  image_tag           = var.image_tag
  billing_account     = var.billing_account
  notification_emails = var.notification_emails
  access_policy_id    = var.access_policy_id

  subnet_cidr           = "10.10.0.0/24"
  private_services_cidr = "10.110.0.0/20"
  kms_protection_level  = "SOFTWARE"
  enable_vpc_sc         = false

  api_min_instances = 0
  api_max_instances = 3
  api_concurrency   = 32
  api_cpu           = "1"
  api_memory        = "2Gi"

  enable_feature_store         = false
  event_retention_days         = 90
  pipeline_root_retention_days = 14
  deletion_protection          = false
  schedules_paused             = true

  budget_amount   = 200
  budget_currency = "EUR"
}
