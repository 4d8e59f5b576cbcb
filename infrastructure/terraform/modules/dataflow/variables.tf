variable "project_id" {
  description = "The project of the Dataflow jobs."
  type        = string
}

variable "region" {
  description = "Region of the jobs and of the Artifact Registry repository."
  type        = string
}

variable "name_prefix" {
  description = "The worker account is <name_prefix>-dataflow."
  type        = string
  default     = "fmnist"
}

variable "dataflow_bucket" {
  description = "Bucket holding templates/, staging/ and temp/."
  type        = string
}

variable "data_lake_bucket" {
  description = "The data lake bucket (batch inputs and outputs)."
  type        = string
}

variable "artifacts_bucket" {
  description = "The artifacts bucket (models the workers read)."
  type        = string
}

variable "repository" {
  description = "Artifact Registry repository of the batch worker image."
  type        = string
}

variable "launchers" {
  description = "Members that launch jobs running as the worker account, keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "subnetwork" {
  description = "Self link of the subnet the workers run in."
  type        = string
}

variable "network_tag" {
  description = "Network tag of the workers (the firewall allows worker-to-worker traffic by it)."
  type        = string
}

variable "kms_key_name" {
  description = "CMEK key of the jobs' state (--dataflow_kms_key)."
  type        = string
}
