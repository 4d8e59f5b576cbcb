variable "project_id" {
  description = "The project of the service accounts."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the service account ids (<prefix>-serving, ...)."
  type        = string
  default     = "fmnist"
}

variable "github_repository" {
  description = "The GitHub repository (owner/name) whose Actions runs may impersonate the CI deployer."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "github_subjects" {
  description = "Contexts of the OIDC sub claim allowed to authenticate, after repo:<owner>/<name>: (e.g. ref:refs/heads/main, environment:prod, pull_request)."
  type        = list(string)
  default     = ["ref:refs/heads/main"]

  validation {
    condition     = length(var.github_subjects) > 0 && alltrue([for s in var.github_subjects : length(regexall("[*']", s)) == 0])
    error_message = "github_subjects must name at least one subject context, without wildcards or quotes."
  }
}

variable "wif_pool_id" {
  description = "Id of the workload identity pool (pool ids stay reserved for 30 days after deletion)."
  type        = string
  default     = "github"
}
