# The event topics of the gcp profile's events port: <prefix>-predictions and <prefix>-feedback
# (fmnist.streaming.envelope), each with the `analytics` pull subscription the analytics
# consumer drains into BigQuery (fmnist.streaming.consumer), a dead-letter topic that takes
# messages after max_delivery_attempts, and a subscription on the dead-letter topic to inspect
# and replay them. CMEK, storage pinned to the region, exponential retry backoff.

locals {
  topics = toset(var.topics)
}

resource "google_pubsub_topic" "this" {
  for_each = local.topics

  project                    = var.project_id
  name                       = "${var.topic_prefix}-${each.key}"
  kms_key_name               = var.kms_key_name
  message_retention_duration = var.topic_retention
  labels                     = merge(var.labels, { topic = each.key })

  message_storage_policy {
    allowed_persistence_regions = [var.region]
  }
}

resource "google_pubsub_topic" "dead_letter" {
  for_each = local.topics

  project                    = var.project_id
  name                       = "${var.topic_prefix}-${each.key}-dead-letter"
  kms_key_name               = var.kms_key_name
  message_retention_duration = var.topic_retention
  labels                     = merge(var.labels, { topic = "${each.key}-dead-letter" })

  message_storage_policy {
    allowed_persistence_regions = [var.region]
  }
}

resource "google_pubsub_subscription" "this" {
  for_each = local.topics

  project                      = var.project_id
  name                         = "${var.topic_prefix}-${each.key}-${var.subscription_name}"
  topic                        = google_pubsub_topic.this[each.key].id
  ack_deadline_seconds         = var.ack_deadline_seconds
  message_retention_duration   = var.subscription_retention
  retain_acked_messages        = false
  enable_exactly_once_delivery = true
  labels                       = merge(var.labels, { topic = each.key })

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = var.minimum_backoff
    maximum_backoff = var.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = var.max_delivery_attempts
  }
}

resource "google_pubsub_subscription" "dead_letter" {
  for_each = local.topics

  project                    = var.project_id
  name                       = "${var.topic_prefix}-${each.key}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.subscription_retention
  retain_acked_messages      = true
  labels                     = merge(var.labels, { topic = "${each.key}-dead-letter" })

  expiration_policy {
    ttl = ""
  }
}

# Dead-letter forwarding is done by the Pub/Sub service agent: it publishes to the dead-letter
# topic and acknowledges (subscriber) on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.topics

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.pubsub_service_agent}"
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = local.topics

  project      = var.project_id
  subscription = google_pubsub_subscription.this[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.pubsub_service_agent}"
}

resource "google_pubsub_topic_iam_member" "publishers" {
  for_each = merge([
    for topic in local.topics : {
      for name, member in var.publishers : "${topic}/${name}" => { topic = topic, member = member }
    }
  ]...)

  project = var.project_id
  topic   = google_pubsub_topic.this[each.value.topic].name
  role    = "roles/pubsub.publisher"
  member  = each.value.member
}

resource "google_pubsub_subscription_iam_member" "subscribers" {
  for_each = merge([
    for topic in local.topics : {
      for name, member in var.subscribers : "${topic}/${name}" => { topic = topic, member = member }
    }
  ]...)

  project      = var.project_id
  subscription = google_pubsub_subscription.this[each.value.topic].name
  role         = "roles/pubsub.subscriber"
  member       = each.value.member
}
