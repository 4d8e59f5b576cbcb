output "slo_name" {
  description = "Resource name of the availability SLO."
  value       = google_monitoring_slo.availability.name
}

output "alert_policy_names" {
  description = "Resource names of the alert policies."
  value = concat(
    [
      google_monitoring_alert_policy.latency_p95.name,
      google_monitoring_alert_policy.error_rate.name,
      google_monitoring_alert_policy.drift.name,
      google_monitoring_alert_policy.uptime.name,
    ],
    [for p in google_monitoring_alert_policy.burn_rate : p.name],
  )
}

output "uptime_check_id" {
  description = "Id of the /healthz uptime check."
  value       = google_monitoring_uptime_check_config.healthz.uptime_check_id
}

output "notification_channels" {
  description = "Notification channel ids the alerts use."
  value       = local.channels
}
