variable "project_id" {
  description = "The project of the triggers."
  type        = string
}

variable "location" {
  description = "Location of the triggers (global for the GitHub App connection)."
  type        = string
  default     = "global"
}

variable "name_prefix" {
  description = "Trigger names are <name_prefix>-main and <name_prefix>-release."
  type        = string
  default     = "fmnist"
}

variable "github_owner" {
  description = "Owner of the GitHub repository."
  type        = string
}

variable "github_name" {
  description = "Name of the GitHub repository."
  type        = string
}

variable "main_branch" {
  description = "Regular expression of the branch that deploys."
  type        = string
  default     = "^main$"
}

variable "release_tag_pattern" {
  description = "Regular expression of release tags."
  type        = string
  default     = "^v[0-9]+\\.[0-9]+\\.[0-9]+$"
}

variable "require_release_approval" {
  description = "A release build waits for a manual approval."
  type        = bool
  default     = false
}

variable "build_config" {
  description = "Build configuration file at the repository root."
  type        = string
  default     = "cloudbuild.yaml"
}

variable "service_account" {
  description = "E-mail of the service account builds run as (the CI deployer)."
  type        = string
}

variable "substitutions" {
  description = "User substitutions passed to every build (_REGION, _REPOSITORY, ...)."
  type        = map(string)
  default     = {}
}
