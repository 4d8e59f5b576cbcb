variable "project_id" {
  description = "The project of the dataset."
  type        = string
}

variable "dataset_id" {
  description = "The analytics dataset (the gcp.bigquery_dataset setting)."
  type        = string
  default     = "fmnist"
}

variable "location" {
  description = "Location of the dataset (the region of the KMS key)."
  type        = string
}

variable "kms_key_name" {
  description = "CMEK key of the dataset and its tables (the BigQuery service agent must be able to use it)."
  type        = string
}

variable "event_retention_days" {
  description = "Days a partition of the event and feature tables is kept (null: forever)."
  type        = number
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete tables through Terraform."
  type        = bool
  default     = true
}

variable "dataset_iam" {
  description = "Dataset-level grants, keyed by a static name."
  type = map(object({
    role   = string
    member = string
  }))
  default = {}

  validation {
    condition     = alltrue([for g in values(var.dataset_iam) : !contains(["allUsers", "allAuthenticatedUsers"], g.member)])
    error_message = "dataset_iam: the dataset is never public."
  }
}

variable "labels" {
  description = "Labels of the dataset and tables."
  type        = map(string)
  default     = {}
}
