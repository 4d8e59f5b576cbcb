variable "project_id" {
  description = "The project of the topics."
  type        = string
}

variable "region" {
  description = "The only region messages are stored in (the region of the KMS key)."
  type        = string
}

variable "topic_prefix" {
  description = "Topic name prefix (the gcp.pubsub_topic_prefix setting)."
  type        = string
  default     = "fmnist"
}

variable "topics" {
  description = "Topic names after the prefix (fmnist.streaming.envelope: predictions, feedback)."
  type        = list(string)
  default     = ["predictions", "feedback"]
}

variable "subscription_name" {
  description = "The consumer's subscription name (fmnist.streaming.consumer uses analytics)."
  type        = string
  default     = "analytics"
}

variable "kms_key_name" {
  description = "CMEK key of every topic (the Pub/Sub service agent must be able to use it)."
  type        = string
}

variable "pubsub_service_agent" {
  description = "E-mail of the project's Pub/Sub service agent (dead-letter forwarding)."
  type        = string
}

variable "topic_retention" {
  description = "How long topics keep messages (replay by seek)."
  type        = string
  default     = "604800s"
}

variable "subscription_retention" {
  description = "How long subscriptions keep unacknowledged messages."
  type        = string
  default     = "604800s"
}

variable "ack_deadline_seconds" {
  description = "Seconds a consumer has to acknowledge a message."
  type        = number
  default     = 60
}

variable "minimum_backoff" {
  description = "Shortest redelivery delay."
  type        = string
  default     = "10s"
}

variable "maximum_backoff" {
  description = "Longest redelivery delay."
  type        = string
  default     = "600s"
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message goes to the dead-letter topic (5-100)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "publishers" {
  description = "Members allowed to publish to every event topic, keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "subscribers" {
  description = "Members allowed to pull the analytics subscriptions, keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "labels" {
  description = "Labels of every topic and subscription."
  type        = map(string)
  default     = {}
}
