variable "project_id" {
  description = "The project of the Vertex AI resources."
  type        = string
}

variable "region" {
  description = "Vertex AI region (the region of the KMS key)."
  type        = string
}

variable "endpoint_id" {
  description = "Numeric id of the endpoint (Vertex AI endpoint names are numbers, at most 10 digits, no leading zero)."
  type        = string
  default     = "2815000001"

  validation {
    condition     = can(regex("^[1-9][0-9]{0,9}$", var.endpoint_id))
    error_message = "endpoint_id must be a number of at most 10 digits without a leading zero."
  }
}

variable "endpoint_display_name" {
  description = "Display name of the endpoint."
  type        = string
  default     = "fmnist"
}

variable "network" {
  description = "projects/<number>/global/networks/<name> of the VPC peered with private services access: the endpoint is private to it."
  type        = string
}

variable "kms_key_name" {
  description = "CMEK key of the endpoint and the feature store (the Vertex AI service agent must be able to use it)."
  type        = string
}

variable "pipelines_service_account" {
  description = "E-mail of the account Vertex AI pipeline and custom jobs run as (gcp.service_account)."
  type        = string
}

variable "pipeline_submitters" {
  description = "Members that may submit jobs running as the pipelines account, keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "registry_readers" {
  description = "Members with read-only access to the Model Registry (roles/aiplatform.viewer), keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "enable_feature_store" {
  description = "Create a Feature Store online store and a feature view on the BigQuery features table."
  type        = bool
  default     = false
}

variable "feature_store_name" {
  description = "Name of the online store ([a-z0-9_])."
  type        = string
  default     = "fmnist"
}

variable "features_table_uri" {
  description = "bq:// URI of the features table (needed with enable_feature_store)."
  type        = string
  default     = null
}

variable "feature_sync_cron" {
  description = "When the feature view syncs from BigQuery."
  type        = string
  default     = "TZ=Etc/UTC 5 * * * *"
}

variable "labels" {
  description = "Labels of the Vertex AI resources."
  type        = map(string)
  default     = {}
}
