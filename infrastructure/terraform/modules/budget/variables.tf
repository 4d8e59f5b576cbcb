variable "project_id" {
  description = "The project the budget covers."
  type        = string
}

variable "project_number" {
  description = "The project's number (budget filters name projects by number)."
  type        = string
}

variable "region" {
  description = "Region the alert topic stores messages in (the region of the KMS key)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the budget's and topic's names."
  type        = string
  default     = "fmnist"
}

variable "billing_account" {
  description = "Billing account id (XXXXXX-XXXXXX-XXXXXX)."
  type        = string
}

variable "amount" {
  description = "Monthly budget in currency_code units."
  type        = number
}

variable "currency_code" {
  description = "Currency of the billing account."
  type        = string
  default     = "EUR"
}

variable "thresholds" {
  description = "Shares of the budget (actual spend) that notify."
  type        = list(number)
  default     = [0.5, 0.9, 1.0]
}

variable "notification_channels" {
  description = "Monitoring notification channel ids (at most 5)."
  type        = list(string)
  default     = []
}

variable "kms_key_name" {
  description = "CMEK key of the alert topic."
  type        = string
}

variable "labels" {
  description = "Labels of the alert topic."
  type        = map(string)
  default     = {}
}
