# Cloud Monitoring of the API: alert policies (p95 latency, 5xx rate, drift, uptime), an
# availability SLO with multi-window multi-burn-rate alerts (Google SRE workbook, chapter 5:
# page at 14.4x over 1h and 5m, ticket at 6x over 6h and 30m), an uptime check on /healthz,
# logs-based metrics from the API's JSON access log, and a dashboard from
# dashboards/fmnist-api.json. Thresholds default to those of the Prometheus rules
# (monitoring/prometheus/rules/fmnist-alerts.yml).

locals {
  run_filter   = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${var.service_name}\""
  requests     = "${local.run_filter} AND metric.type = \"run.googleapis.com/request_count\""
  channels     = concat([for c in google_monitoring_notification_channel.email : c.id], var.extra_notification_channels)
  runbook_base = "${var.docs_base_url}/runbooks.md"

  # select_slo_burn_rate windows: (long, short) pairs and their burn-rate threshold.
  burn_rate_alerts = {
    page = {
      severity  = "CRITICAL"
      long      = "60m"
      short     = "5m"
      threshold = 14.4
      budget    = "2% of the 30-day error budget in 1 hour"
    }
    ticket = {
      severity  = "WARNING"
      long      = "360m"
      short     = "30m"
      threshold = 6
      budget    = "5% of the 30-day error budget in 6 hours"
    }
  }
}

resource "google_monitoring_notification_channel" "email" {
  for_each = var.notification_emails

  project      = var.project_id
  display_name = "fmnist alerts: ${each.key}"
  type         = "email"
  labels = {
    email_address = each.value
  }
}

# --- alert policies on Cloud Run and Managed Prometheus metrics ------------------------------

resource "google_monitoring_alert_policy" "latency_p95" {
  project               = var.project_id
  display_name          = "fmnist API p95 latency above ${var.latency_p95_threshold_ms} ms"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "p95 request latency of ${var.service_name}"
    condition_threshold {
      filter          = "${local.run_filter} AND metric.type = \"run.googleapis.com/request_latencies\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.latency_p95_threshold_ms
      duration        = "600s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
        group_by_fields      = ["resource.label.service_name"]
      }
    }
  }

  documentation {
    content   = "The 95th percentile of request latency has been above ${var.latency_p95_threshold_ms} ms for 10 minutes. Runbook: ${local.runbook_base}#latency-p95-high"
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "error_rate" {
  project               = var.project_id
  display_name          = "fmnist API 5xx rate above ${var.error_rate_threshold * 100}%"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "5xx share of ${var.service_name} requests"
    condition_threshold {
      filter             = "${local.requests} AND metric.labels.response_code_class = \"5xx\""
      denominator_filter = local.requests
      comparison         = "COMPARISON_GT"
      threshold_value    = var.error_rate_threshold
      duration           = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      denominator_aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
    }
  }

  documentation {
    content   = "More than ${var.error_rate_threshold * 100}% of requests have been answered with a 5xx status for 5 minutes. Runbook: ${local.runbook_base}#high-error-rate"
    mime_type = "text/markdown"
  }
}

# fmnist_drift_detected is the drift monitor's gauge (src/fmnist/monitoring/metrics.py); in
# Managed Service for Prometheus a gauge named N is the metric type prometheus.googleapis.com/N/gauge.
resource "google_monitoring_alert_policy" "drift" {
  project               = var.project_id
  display_name          = "fmnist drift detected"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "${var.drift_metric} == 1"
    condition_threshold {
      filter          = "resource.type = \"prometheus_target\" AND metric.type = \"prometheus.googleapis.com/${var.drift_metric}/gauge\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0.5
      duration        = "600s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.job"]
      }
    }
  }

  documentation {
    content   = "The drift monitor has reported drift for 10 minutes: recent traffic no longer looks like the model's validation data. Runbook: ${local.runbook_base}#drift-detected"
    mime_type = "text/markdown"
  }
}

# --- uptime check on /healthz ----------------------------------------------------------------

resource "google_monitoring_uptime_check_config" "healthz" {
  project      = var.project_id
  display_name = "fmnist API /healthz"
  timeout      = "10s"
  period       = "60s"

  http_check {
    path           = "/healthz"
    port           = 443
    use_ssl        = true
    validate_ssl   = true
    request_method = "GET"

    # The service is not public: the check presents an ID token of the Monitoring service
    # agent, which holds roles/run.invoker on the service.
    service_agent_authentication {
      type = "OIDC_TOKEN"
    }

    accepted_response_status_codes {
      status_class = "STATUS_CLASS_2XX"
    }
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = var.uptime_host
    }
  }
}

resource "google_monitoring_alert_policy" "uptime" {
  project               = var.project_id
  display_name          = "fmnist API /healthz failing"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "uptime check ${google_monitoring_uptime_check_config.healthz.uptime_check_id}"
    condition_threshold {
      filter          = "resource.type = \"uptime_url\" AND metric.type = \"monitoring.googleapis.com/uptime_check/check_passed\" AND metric.labels.check_id = \"${google_monitoring_uptime_check_config.healthz.uptime_check_id}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "120s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.host"]
      }
    }
  }

  documentation {
    content   = "More than one checker region cannot reach /healthz. Runbook: ${local.runbook_base}#target-down"
    mime_type = "text/markdown"
  }
}

# --- availability SLO and burn-rate alerts ---------------------------------------------------

resource "google_monitoring_custom_service" "api" {
  project      = var.project_id
  service_id   = var.service_name
  display_name = "fmnist API (Cloud Run ${var.service_name})"
  user_labels  = var.labels
}

resource "google_monitoring_slo" "availability" {
  project             = var.project_id
  service             = google_monitoring_custom_service.api.service_id
  slo_id              = "availability"
  display_name        = "${var.slo_goal * 100}% of requests succeed (not 5xx), rolling ${var.slo_rolling_days} days"
  goal                = var.slo_goal
  rolling_period_days = var.slo_rolling_days
  user_labels         = var.labels

  request_based_sli {
    good_total_ratio {
      bad_service_filter   = "${local.requests} AND metric.labels.response_code_class = \"5xx\""
      total_service_filter = local.requests
    }
  }
}

resource "google_monitoring_alert_policy" "burn_rate" {
  for_each = local.burn_rate_alerts

  project               = var.project_id
  display_name          = "fmnist API availability SLO burn rate (${each.key}: ${each.value.threshold}x over ${each.value.long} and ${each.value.short})"
  combiner              = "AND"
  severity              = each.value.severity
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "burn rate over ${each.value.long} > ${each.value.threshold}"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${google_monitoring_slo.availability.name}\", \"${each.value.long}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.threshold
      duration        = "0s"
    }
  }

  conditions {
    display_name = "burn rate over ${each.value.short} > ${each.value.threshold}"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${google_monitoring_slo.availability.name}\", \"${each.value.short}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.threshold
      duration        = "0s"
    }
  }

  documentation {
    content   = "The API is spending its availability error budget ${each.value.threshold} times faster than the SLO allows (${each.value.budget}), over both windows. Runbook: ${local.runbook_base}#high-error-rate"
    mime_type = "text/markdown"
  }
}

# --- logs-based metrics from the API's JSON access log ---------------------------------------
# Each request is one line of the logger fmnist.serving.access (src/fmnist/serving/middleware.py);
# Cloud Logging lifts its httpRequest field into the entry, the message carries
# "route=... status=... model_version=...".

resource "google_logging_metric" "predictions" {
  project     = var.project_id
  name        = "fmnist/predictions"
  description = "Successful prediction requests of the API, by route and model version."
  filter      = "${local.run_filter} AND jsonPayload.logger = \"fmnist.serving.access\" AND httpRequest.requestUrl =~ \"^/v1/predict\" AND httpRequest.status < 400"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "fmnist predictions"

    labels {
      key         = "route"
      value_type  = "STRING"
      description = "API route"
    }

    labels {
      key         = "model_version"
      value_type  = "STRING"
      description = "Model version that answered"
    }
  }

  label_extractors = {
    route         = "EXTRACT(httpRequest.requestUrl)"
    model_version = "REGEXP_EXTRACT(jsonPayload.message, \"model_version=(\\\\S+)\")"
  }
}

resource "google_logging_metric" "server_errors" {
  project     = var.project_id
  name        = "fmnist/server_errors"
  description = "API responses with a 5xx status, by route."
  filter      = "${local.run_filter} AND jsonPayload.logger = \"fmnist.serving.access\" AND httpRequest.status >= 500"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "fmnist 5xx responses"

    labels {
      key         = "route"
      value_type  = "STRING"
      description = "API route"
    }
  }

  label_extractors = {
    route = "EXTRACT(httpRequest.requestUrl)"
  }
}

# --- dashboard --------------------------------------------------------------------------------

resource "google_monitoring_dashboard" "api" {
  project = var.project_id
  dashboard_json = templatefile("${path.module}/dashboards/fmnist-api.json", {
    service_name       = var.service_name
    predictions_metric = "logging.googleapis.com/user/${google_logging_metric.predictions.name}"
    errors_metric      = "logging.googleapis.com/user/${google_logging_metric.server_errors.name}"
    drift_metric       = "prometheus.googleapis.com/${var.drift_metric}/gauge"
    slo_name           = google_monitoring_slo.availability.name
  })
}
