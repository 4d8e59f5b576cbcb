# Values that identify the environment; they are passed with -var-file (see
# terraform.tfvars.example) so no project, account or address is committed.

variable "project_id" {
  description = "The environment's project."
  type        = string
}

variable "region" {
  description = "Region of the environment."
  type        = string
  default     = "europe-west4"
}

variable "billing_account" {
  description = "Billing account id of the budget."
  type        = string
}

variable "github_repository" {
  description = "GitHub repository (owner/name) of the code."
  type        = string
}

variable "image_tag" {
  description = "Image tag of the first deployment (CI deploys later ones)."
  type        = string
}

variable "notification_emails" {
  description = "Alert e-mail addresses, keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "access_policy_id" {
  description = "The organization's Access Context Manager policy number (VPC Service Controls)."
  type        = string
  default     = null
}
