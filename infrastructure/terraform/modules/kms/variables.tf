variable "project_id" {
  description = "The project holding the key ring."
  type        = string
}

variable "location" {
  description = "Location of the key ring; it must match the location of the resources the keys encrypt."
  type        = string
}

variable "key_ring_name" {
  description = "Name of the key ring (key rings cannot be deleted: pick a new name to start over)."
  type        = string
}

variable "keys" {
  description = "One key per use. encrypters: static name => IAM member granted roles/cloudkms.cryptoKeyEncrypterDecrypter on that key."
  type = map(object({
    encrypters = map(string)
  }))
}

variable "rotation_period" {
  description = "Automatic rotation period of every key (90 days)."
  type        = string
  default     = "7776000s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.rotation_period)) && tonumber(trimsuffix(var.rotation_period, "s")) <= 7776000
    error_message = "rotation_period must be a duration in seconds of at most 90 days (7776000s)."
  }
}

variable "destroy_scheduled_duration" {
  description = "How long a destroyed key version stays recoverable."
  type        = string
  default     = "2592000s"
}

variable "protection_level" {
  description = "SOFTWARE or HSM."
  type        = string
  default     = "SOFTWARE"

  validation {
    condition     = contains(["SOFTWARE", "HSM"], var.protection_level)
    error_message = "protection_level must be SOFTWARE or HSM."
  }
}

variable "labels" {
  description = "Labels of every key."
  type        = map(string)
  default     = {}
}
