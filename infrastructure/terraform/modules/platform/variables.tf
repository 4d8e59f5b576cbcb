variable "project_id" {
  description = "The environment's project (one project per environment)."
  type        = string
}

variable "environment" {
  description = "Environment name: dev or prod."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "region" {
  description = "The one region of every regional resource and KMS key (the gcp.region setting)."
  type        = string
  default     = "europe-west4"
}

variable "name_prefix" {
  description = "Prefix of resource names; also the Pub/Sub topic prefix and repository name."
  type        = string
  default     = "fmnist"
}

variable "labels" {
  description = "Extra labels of every resource that takes labels."
  type        = map(string)
  default     = {}
}

# --- identity and CI ---------------------------------------------------------------------------

variable "github_repository" {
  description = "GitHub repository (owner/name): the only one whose Actions may impersonate the CI deployer, and the source of the Cloud Build triggers."
  type        = string
}

variable "github_subjects" {
  description = "OIDC sub contexts (after repo:<owner>/<name>:) allowed through Workload Identity Federation."
  type        = list(string)
  default     = ["ref:refs/heads/main"]
}

variable "require_release_approval" {
  description = "Release builds wait for a manual approval."
  type        = bool
  default     = false
}

variable "image_tag" {
  description = "Tag of the images the first revisions and jobs are created with (CI deploys later ones)."
  type        = string
}

# --- keys, network -----------------------------------------------------------------------------

variable "key_ring_suffix" {
  description = "Suffix of the key ring name (key rings cannot be deleted; change it to start over)."
  type        = string
  default     = "keys"
}

variable "kms_protection_level" {
  description = "SOFTWARE or HSM keys."
  type        = string
  default     = "SOFTWARE"
}

variable "subnet_cidr" {
  description = "Range of the environment's subnet."
  type        = string
}

variable "private_services_cidr" {
  description = "Range reserved for private services access (the Vertex AI private endpoint)."
  type        = string
}

variable "enable_vpc_sc" {
  description = "Put the project in a VPC Service Controls perimeter (needs access_policy_id)."
  type        = bool
  default     = false
}

variable "vpc_sc_enforced" {
  description = "Enforce the perimeter (false: dry run)."
  type        = bool
  default     = false
}

variable "access_policy_id" {
  description = "The organization's Access Context Manager policy number (with enable_vpc_sc)."
  type        = string
  default     = null
}

# --- data --------------------------------------------------------------------------------------

variable "bigquery_dataset" {
  description = "The analytics dataset (the gcp.bigquery_dataset setting)."
  type        = string
  default     = "fmnist"
}

variable "event_retention_days" {
  description = "Days event and feature partitions are kept (null: forever)."
  type        = number
  default     = null
}

variable "pipeline_root_retention_days" {
  description = "Days Vertex AI pipeline outputs are kept."
  type        = number
  default     = 30
}

variable "enable_feature_store" {
  description = "Create the Vertex AI Feature Store online store and feature view."
  type        = bool
  default     = false
}

variable "dataflow_machine_type" {
  description = "Dataflow worker machine type (the gcp.dataflow_machine_type setting)."
  type        = string
  default     = "n2-standard-4"
}

variable "deletion_protection" {
  description = "Deletion protection of the Cloud Run service and jobs (BigQuery tables are always protected)."
  type        = bool
  default     = true
}

# --- the API -----------------------------------------------------------------------------------

variable "api_min_instances" {
  description = "Warm instances of the API."
  type        = number
  default     = 1
}

variable "api_max_instances" {
  description = "Most instances of the API."
  type        = number
  default     = 10
}

variable "api_concurrency" {
  description = "Concurrent requests per API instance."
  type        = number
  default     = 32
}

variable "api_cpu" {
  description = "vCPUs per API instance."
  type        = string
  default     = "2"
}

variable "api_memory" {
  description = "Memory per API instance."
  type        = string
  default     = "2Gi"
}

variable "api_ingress" {
  description = "Ingress of the API (INGRESS_TRAFFIC_ALL lets the uptime check and callers with IAM reach it)."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"
}

variable "api_stable_revision" {
  description = "Pinned stable revision during a canary (null: all traffic to the latest revision)."
  type        = string
  default     = null
}

variable "api_canary_percent" {
  description = "Traffic share of the latest revision while api_stable_revision is set."
  type        = number
  default     = 10
}

variable "api_invokers" {
  description = "Members allowed to call the API, keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "api_model_export_path" {
  description = "Folder in the artifacts bucket holding the model export the API serves (mounted read-only); null: the API reads the Vertex AI Model Registry."
  type        = string
  default     = "model-export"
}

variable "public_invoker" {
  description = "Let anyone call the API (allUsers invoker); the API's keys are then the only access control. Off by default."
  type        = bool
  default     = false
}

# --- schedules ---------------------------------------------------------------------------------

variable "drift_check_schedule" {
  description = "Cron of the drift check (the k8s CronJob's: hourly at :17)."
  type        = string
  default     = "17 * * * *"
}

variable "analytics_consume_schedule" {
  description = "Cron of the analytics consumer (Pub/Sub analytics subscriptions into BigQuery)."
  type        = string
  default     = "*/5 * * * *"
}

variable "retrain_schedule" {
  description = "Cron of the retrain job (the k8s CronJob's: Monday 03:00 UTC)."
  type        = string
  default     = "0 3 * * 1"
}

variable "schedules_paused" {
  description = "Create the Cloud Scheduler jobs paused."
  type        = bool
  default     = false
}

# --- monitoring and budget ---------------------------------------------------------------------

variable "notification_emails" {
  description = "Alert e-mail addresses, keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "latency_p95_threshold_ms" {
  description = "p95 latency that alerts."
  type        = number
  default     = 100
}

variable "error_rate_threshold" {
  description = "5xx share that alerts."
  type        = number
  default     = 0.05
}

variable "availability_slo" {
  description = "Availability objective of the API."
  type        = number
  default     = 0.999
}

variable "docs_base_url" {
  description = "Base URL of the published docs (runbook links in alerts)."
  type        = string
  default     = "docs"
}

variable "billing_account" {
  description = "Billing account of the budget."
  type        = string
}

variable "budget_amount" {
  description = "Monthly budget."
  type        = number
}

variable "budget_currency" {
  description = "Currency of the billing account."
  type        = string
  default     = "EUR"
}
