variable "project_id" {
  description = "The project of the buckets."
  type        = string
}

variable "name_prefix" {
  description = "Bucket names are <name_prefix>-<purpose>; bucket names are global, so include the project id."
  type        = string
}

variable "location" {
  description = "Location of every bucket (the region of the KMS key)."
  type        = string
}

variable "kms_key_name" {
  description = "CMEK key of every bucket (the Cloud Storage service agent must be able to use it)."
  type        = string
}

variable "noncurrent_retention_days" {
  description = "Days an overwritten or deleted object version is kept in the data lake and artifacts."
  type        = number
  default     = 30
}

variable "pipeline_root_retention_days" {
  description = "Days Vertex AI pipeline run outputs are kept."
  type        = number
  default     = 30
}

variable "access_log_retention_days" {
  description = "Days access logs are kept."
  type        = number
  default     = 365
}

variable "soft_delete_seconds" {
  description = "Soft delete retention of every bucket (0 switches it off)."
  type        = number
  default     = 604800
}

variable "bucket_iam" {
  description = "Bucket-level grants, keyed by a static name: bucket is one of data-lake, artifacts, pipeline-root, dataflow."
  type = map(object({
    bucket = string
    role   = string
    member = string
  }))
  default = {}

  validation {
    condition     = alltrue([for g in values(var.bucket_iam) : contains(["data-lake", "artifacts", "pipeline-root", "dataflow"], g.bucket)])
    error_message = "bucket_iam: bucket must be one of data-lake, artifacts, pipeline-root, dataflow."
  }

  validation {
    condition     = alltrue([for g in values(var.bucket_iam) : !contains(["allUsers", "allAuthenticatedUsers"], g.member)])
    error_message = "bucket_iam: buckets are never public."
  }
}

variable "labels" {
  description = "Labels of every bucket."
  type        = map(string)
  default     = {}
}
