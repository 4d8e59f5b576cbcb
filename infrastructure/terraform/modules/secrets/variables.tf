variable "project_id" {
  description = "The project of the secrets."
  type        = string
}

variable "region" {
  description = "The one region the secrets are replicated in (the region of the KMS key)."
  type        = string
}

variable "name_prefix" {
  description = "Secret ids are <name_prefix>-<name>."
  type        = string
  default     = "fmnist"
}

variable "secrets" {
  description = "Secret short name => what it holds (values are never set here)."
  type        = map(string)
  default = {
    admin-token    = "serving.admin_token: a credential with every API scope (FMNIST_SERVING__ADMIN_TOKEN)"
    api-keys       = "the hashed API keys file (fmnist keys create; security.keys_path), mounted into the API"
    api-key-pepper = "pepper for hashing API keys (reserved: not read by the code yet)"
  }
}

variable "kms_key_name" {
  description = "CMEK key of the secrets (the Secret Manager service agent must be able to use it)."
  type        = string
}

variable "accessors" {
  description = "Members that may read every secret's versions, keyed by a static name: the serving account only."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for m in values(var.accessors) : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "accessors: secrets are never public."
  }
}

variable "labels" {
  description = "Labels of every secret."
  type        = map(string)
  default     = {}
}
