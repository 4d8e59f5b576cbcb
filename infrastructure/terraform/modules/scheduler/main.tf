# The scheduled work of the platform as Cloud Run jobs started by Cloud Scheduler (the same
# schedules as the Kubernetes CronJobs in infrastructure/k8s/base/jobs):
#   drift-check        `fmnist monitor run --once --port 0`, hourly, as the monitor account;
#   analytics-consume  `fmnist events consume --once --no-relay`: the Pub/Sub analytics
#                      subscriptions into BigQuery, every 5 minutes, as the monitor account;
#   retrain            `fmnist retrain --json`, weekly, as the pipelines account (its own lock
#                      and cooldown make an overlapping or too-early run a recorded no-op).
# Cloud Scheduler calls the Cloud Run Admin API (jobs:run) with an OAuth token of the
# scheduler account, which may invoke these jobs and nothing else.

resource "google_cloud_run_v2_job" "this" {
  for_each = var.jobs

  project             = var.project_id
  name                = "${var.name_prefix}-${each.key}"
  location            = var.region
  deletion_protection = var.deletion_protection
  labels              = merge(var.labels, { job = each.key })

  template {
    task_count  = 1
    parallelism = 1
    labels      = merge(var.labels, { job = each.key })

    template {
      service_account       = each.value.service_account
      encryption_key        = var.kms_key_name
      execution_environment = "EXECUTION_ENVIRONMENT_GEN2"
      max_retries           = each.value.max_retries
      timeout               = each.value.timeout

      vpc_access {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = var.network
          subnetwork = var.subnetwork
        }
      }

      containers {
        image   = each.value.image
        command = ["fmnist"]
        args    = each.value.args

        resources {
          limits = {
            cpu    = each.value.cpu
            memory = each.value.memory
          }
        }

        dynamic "env" {
          for_each = var.env
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  lifecycle {
    # CI deploys new images; Terraform owns everything else.
    ignore_changes = [
      client,
      client_version,
      template[0].template[0].containers[0].image,
    ]
  }
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_invoker" {
  for_each = var.jobs

  project  = var.project_id
  location = google_cloud_run_v2_job.this[each.key].location
  name     = google_cloud_run_v2_job.this[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.scheduler_service_account}"
}

resource "google_cloud_scheduler_job" "this" {
  for_each = var.jobs

  project          = var.project_id
  region           = var.region
  name             = "${var.name_prefix}-${each.key}"
  description      = "Runs the Cloud Run job ${google_cloud_run_v2_job.this[each.key].name}: fmnist ${join(" ", each.value.args)}"
  schedule         = each.value.schedule
  time_zone        = var.time_zone
  attempt_deadline = "320s"
  paused           = var.paused

  retry_config {
    retry_count          = 3
    min_backoff_duration = "30s"
    max_backoff_duration = "600s"
  }

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.this[each.key].name}:run"

    oauth_token {
      service_account_email = var.scheduler_service_account
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_cloud_run_v2_job_iam_member.scheduler_invoker]
}
