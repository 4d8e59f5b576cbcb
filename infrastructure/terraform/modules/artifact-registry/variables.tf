variable "project_id" {
  description = "The project of the repository."
  type        = string
}

variable "location" {
  description = "Region of the repository (the region of the KMS key)."
  type        = string
}

variable "repository_id" {
  description = "Repository name: images are <location>-docker.pkg.dev/<project>/<repository_id>/<image>."
  type        = string
  default     = "fmnist"
}

variable "kms_key_name" {
  description = "CMEK key of the repository (the Artifact Registry service agent must be able to use it)."
  type        = string
}

variable "immutable_tags" {
  description = "A tag, once pushed, always names the same image (CI tags by commit SHA and release tag)."
  type        = bool
  default     = true
}

variable "cleanup_dry_run" {
  description = "Only log what the cleanup policies would delete."
  type        = bool
  default     = false
}

variable "untagged_retention_days" {
  description = "Days an untagged image is kept."
  type        = number
  default     = 7
}

variable "retention_days" {
  description = "Days any image is kept unless a KEEP policy holds it."
  type        = number
  default     = 180
}

variable "keep_recent_versions" {
  description = "Most recent versions of each image always kept."
  type        = number
  default     = 20
}

variable "repository_iam" {
  description = "Repository-level grants, keyed by a static name."
  type = map(object({
    role   = string
    member = string
  }))
  default = {}

  validation {
    condition     = alltrue([for g in values(var.repository_iam) : !contains(["allUsers", "allAuthenticatedUsers"], g.member)])
    error_message = "repository_iam: the repository is never public."
  }
}

variable "labels" {
  description = "Labels of the repository."
  type        = map(string)
  default     = {}
}
