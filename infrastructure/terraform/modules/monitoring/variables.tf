variable "project_id" {
  description = "The project of the monitoring resources."
  type        = string
}

variable "service_name" {
  description = "The Cloud Run service monitored."
  type        = string
}

variable "uptime_host" {
  description = "Host name of the service's URL (without https://)."
  type        = string
}

variable "notification_emails" {
  description = "E-mail notification channels, keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "extra_notification_channels" {
  description = "Further notification channel ids (PagerDuty, Slack, Pub/Sub) created elsewhere."
  type        = list(string)
  default     = []
}

variable "latency_p95_threshold_ms" {
  description = "p95 request latency that alerts (FmnistLatencyP95High: 100 ms)."
  type        = number
  default     = 100
}

variable "error_rate_threshold" {
  description = "Share of 5xx responses that alerts (FmnistHighErrorRate: 0.05)."
  type        = number
  default     = 0.05
}

variable "drift_metric" {
  description = "Name of the drift gauge (src/fmnist/monitoring/metrics.py)."
  type        = string
  default     = "fmnist_drift_detected"
}

variable "slo_goal" {
  description = "Availability objective."
  type        = number
  default     = 0.999

  validation {
    condition     = var.slo_goal > 0 && var.slo_goal < 1
    error_message = "slo_goal must be between 0 and 1."
  }
}

variable "slo_rolling_days" {
  description = "Rolling window of the SLO."
  type        = number
  default     = 30
}

variable "docs_base_url" {
  description = "Where the runbooks are published (links in alert documentation)."
  type        = string
  default     = "docs"
}

variable "labels" {
  description = "User labels of the policies, service and SLO."
  type        = map(string)
  default     = {}
}
