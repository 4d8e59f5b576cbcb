variable "project_id" {
  description = "The project of the service."
  type        = string
}

variable "region" {
  description = "Region of the service."
  type        = string
}

variable "service_name" {
  description = "Name of the Cloud Run service."
  type        = string
  default     = "fmnist-api"
}

variable "image" {
  description = "Image of the first revision (later revisions are deployed by CI)."
  type        = string
}

variable "service_account" {
  description = "E-mail of the serving service account."
  type        = string
}

variable "min_instances" {
  description = "Instances kept warm (0 allows scale to zero and cold starts)."
  type        = number
  default     = 1
}

variable "max_instances" {
  description = "Upper bound of autoscaling."
  type        = number
  default     = 10
}

variable "concurrency" {
  description = "Requests one instance handles at once (the API micro-batches them)."
  type        = number
  default     = 32
}

variable "cpu" {
  description = "vCPUs per instance."
  type        = string
  default     = "2"
}

variable "memory" {
  description = "Memory per instance."
  type        = string
  default     = "2Gi"
}

variable "cpu_idle" {
  description = "Throttle CPU between requests (false keeps background work such as hot reload running)."
  type        = bool
  default     = false
}

variable "request_timeout" {
  description = "Longest request."
  type        = string
  default     = "60s"
}

variable "container_port" {
  description = "Port the API listens on (Cloud Run passes it as PORT)."
  type        = number
  default     = 8000
}

variable "startup_failure_threshold" {
  description = "Startup probe failures (every 5 s) before the instance is replaced: 48 gives 4 minutes to load the model."
  type        = number
  default     = 48
}

variable "env" {
  description = "Plain environment variables (fmnist settings FMNIST_*)."
  type        = map(string)
  default     = {}
}

variable "secret_env" {
  description = "Environment variables from Secret Manager: name => { secret (id), version }."
  type = map(object({
    secret  = string
    version = string
  }))
  default = {}
}

variable "api_keys_secret" {
  description = "Secret holding the hashed API keys file (fmnist keys create; security.keys_path), mounted at /var/lib/fmnist/security/api_keys.json; null: none."
  type        = string
  default     = null
}

variable "model_export_bucket" {
  description = "Bucket mounted read-only at /mnt/artifacts holding the model export the API serves (serving.model_export); null: models come from the registry."
  type        = string
  default     = null
}

variable "model_export_path" {
  description = "Folder of the model export (fmnist models export) inside model_export_bucket."
  type        = string
  default     = "model-export"
}

variable "network" {
  description = "VPC of Direct VPC egress."
  type        = string
}

variable "subnetwork" {
  description = "Subnet of Direct VPC egress (instance IPs come from it)."
  type        = string
}

variable "vpc_egress" {
  description = "PRIVATE_RANGES_ONLY or ALL_TRAFFIC."
  type        = string
  default     = "PRIVATE_RANGES_ONLY"

  validation {
    condition     = contains(["PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"], var.vpc_egress)
    error_message = "vpc_egress must be PRIVATE_RANGES_ONLY or ALL_TRAFFIC."
  }
}

variable "ingress" {
  description = "INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be one of INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY, INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "kms_key_name" {
  description = "CMEK key of the service (the Cloud Run service agent must be able to use it)."
  type        = string
}

variable "binary_authorization" {
  description = "Enforce the project's default Binary Authorization policy on deploys."
  type        = bool
  default     = false
}

variable "stable_revision" {
  description = "Pinned stable revision for a canary (null: all traffic to the latest revision)."
  type        = string
  default     = null
}

variable "canary_percent" {
  description = "Share of traffic of the latest revision while stable_revision is set (0-100)."
  type        = number
  default     = 10

  validation {
    condition     = var.canary_percent >= 0 && var.canary_percent <= 100 && floor(var.canary_percent) == var.canary_percent
    error_message = "canary_percent must be a whole number from 0 to 100."
  }
}

variable "invokers" {
  description = "Members allowed to call the service (roles/run.invoker), keyed by a static name. Not allUsers: see public_invoker."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for m in values(var.invokers) : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "invokers: use public_invoker for public access."
  }
}

variable "public_invoker" {
  description = "Let anyone invoke the service (allUsers). Off by default; when on, the API's own keys (FMNIST_SECURITY__AUTH=on) are the only access control."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Refuse to delete the service through Terraform."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels of the service and its revisions."
  type        = map(string)
  default     = {}
}
