variable "project_id" {
  description = "The project of the jobs."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run and Cloud Scheduler jobs."
  type        = string
}

variable "name_prefix" {
  description = "Job names are <name_prefix>-<job>."
  type        = string
  default     = "fmnist"
}

variable "jobs" {
  description = "Scheduled jobs: image, fmnist arguments, schedule (cron), the service account it runs as, limits."
  type = map(object({
    image           = string
    args            = list(string)
    schedule        = string
    service_account = string
    cpu             = optional(string, "2")
    memory          = optional(string, "4Gi")
    timeout         = optional(string, "3600s")
    max_retries     = optional(number, 1)
  }))
}

variable "env" {
  description = "Environment variables of every job (fmnist settings FMNIST_*)."
  type        = map(string)
  default     = {}
}

variable "scheduler_service_account" {
  description = "E-mail of the account Cloud Scheduler calls the jobs as (the monitor/scheduler account)."
  type        = string
}

variable "time_zone" {
  description = "Time zone of the schedules."
  type        = string
  default     = "Etc/UTC"
}

variable "paused" {
  description = "Create the schedules paused."
  type        = bool
  default     = false
}

variable "network" {
  description = "VPC of Direct VPC egress."
  type        = string
}

variable "subnetwork" {
  description = "Subnet of Direct VPC egress."
  type        = string
}

variable "kms_key_name" {
  description = "CMEK key of the jobs."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the jobs through Terraform."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels of the jobs."
  type        = map(string)
  default     = {}
}
