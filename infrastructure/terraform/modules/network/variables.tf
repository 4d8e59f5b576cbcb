variable "project_id" {
  description = "The project of the VPC."
  type        = string
}

variable "project_number" {
  description = "The project's number (the VPC-SC perimeter lists projects by number)."
  type        = string
  default     = null
}

variable "region" {
  description = "Region of the subnet (the region Cloud Run, Dataflow and Vertex AI run in)."
  type        = string
}

variable "network_name" {
  description = "Name of the VPC."
  type        = string
}

variable "subnet_cidr" {
  description = "Primary range of the subnet; Direct VPC egress takes Cloud Run instance IPs from it (a /24 serves about 100 instances)."
  type        = string
}

variable "private_services_cidr" {
  description = "Range reserved for private services access (VPC peering with Google services: the Vertex AI private endpoint)."
  type        = string
}

variable "flow_log_sampling" {
  description = "Share of flows recorded in VPC flow logs (0-1)."
  type        = number
  default     = 0.5
}

variable "dataflow_network_tag" {
  description = "Network tag of the Dataflow workers."
  type        = string
  default     = "dataflow"
}

variable "enable_vpc_sc" {
  description = "Create a VPC Service Controls perimeter around the project (needs an organization access policy)."
  type        = bool
  default     = false
}

variable "vpc_sc_enforced" {
  description = "Enforce the perimeter; false keeps it in dry-run mode (violations are logged only)."
  type        = bool
  default     = false
}

variable "access_policy_id" {
  description = "Number of the organization's Access Context Manager policy (only with enable_vpc_sc)."
  type        = string
  default     = null
}

variable "vpc_sc_access_levels" {
  description = "Access levels allowed through the perimeter (accessPolicies/<n>/accessLevels/<name>)."
  type        = list(string)
  default     = []
}

variable "vpc_sc_restricted_services" {
  description = "Services protected by the perimeter."
  type        = list(string)
  default = [
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudkms.googleapis.com",
    "dataflow.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}

variable "labels" {
  description = "Labels of the resources that take them."
  type        = map(string)
  default     = {}
}
