# The prediction API (`fmnist serve`, the services/api image) as a Cloud Run service:
# autoscaling bounds, request concurrency, CPU and memory, a startup probe on /readyz (no
# traffic until the model is loaded) and a liveness probe on /healthz, settings from plain
# environment variables and secrets from Secret Manager (the admin token as a variable, the
# hashed API keys file as a mounted file), the model export mounted read-only from the
# artifacts bucket (Cloud Storage volume), Direct VPC egress, CMEK, and a
# traffic block that supports a canary: with stable_revision set, the latest revision gets
# canary_percent (tag `canary`) and the pinned revision the rest (tag `stable`).
# Invocation needs IAM (roles/run.invoker); public_invoker is the one documented exception.

locals {
  canary = var.stable_revision != null

  keys_dir   = "/var/lib/fmnist/security"
  export_dir = "/mnt/artifacts"

  # Settings that point the API at what is mounted: the hashed API keys file from Secret
  # Manager and the model export (fmnist models export) in the artifacts bucket.
  mount_env = {
    for name, spec in {
      FMNIST_SECURITY__KEYS_PATH   = { on = var.api_keys_secret != null, value = "${local.keys_dir}/api_keys.json" }
      FMNIST_SERVING__MODEL_EXPORT = { on = var.model_export_bucket != null, value = "${local.export_dir}/${var.model_export_path}" }
    } : name => spec.value if spec.on
  }
}

resource "google_cloud_run_v2_service" "this" {
  project             = var.project_id
  name                = var.service_name
  location            = var.region
  description         = "fmnist prediction API and web UI."
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = var.labels

  binary_authorization {
    use_default = var.binary_authorization
  }

  template {
    service_account                  = var.service_account
    encryption_key                   = var.kms_key_name
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    max_instance_request_concurrency = var.concurrency
    timeout                          = var.request_timeout
    labels                           = var.labels

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    vpc_access {
      egress = var.vpc_egress
      network_interfaces {
        network    = var.network
        subnetwork = var.subnetwork
      }
    }

    dynamic "volumes" {
      for_each = var.api_keys_secret == null ? [] : [1]
      content {
        name = "api-keys"
        secret {
          secret       = var.api_keys_secret
          default_mode = 292 # 0444: the container runs as a non-root user
          items {
            version = "latest"
            path    = "api_keys.json"
            mode    = 292
          }
        }
      }
    }

    dynamic "volumes" {
      for_each = var.model_export_bucket == null ? [] : [1]
      content {
        name = "artifacts"
        gcs {
          bucket    = var.model_export_bucket
          read_only = true
        }
      }
    }

    containers {
      name  = "api"
      image = var.image

      ports {
        name           = "http1"
        container_port = var.container_port
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = var.cpu_idle
        startup_cpu_boost = true
      }

      dynamic "volume_mounts" {
        for_each = var.api_keys_secret == null ? [] : [1]
        content {
          name       = "api-keys"
          mount_path = local.keys_dir
        }
      }

      dynamic "volume_mounts" {
        for_each = var.model_export_bucket == null ? [] : [1]
        content {
          name       = "artifacts"
          mount_path = local.export_dir
        }
      }

      dynamic "env" {
        for_each = merge(var.env, local.mount_env)
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }

      # Ready only once the model is loaded (the API answers 503 on /readyz before).
      startup_probe {
        initial_delay_seconds = 0
        period_seconds        = 5
        timeout_seconds       = 3
        failure_threshold     = var.startup_failure_threshold
        http_get {
          path = "/readyz"
        }
      }

      liveness_probe {
        period_seconds    = 20
        timeout_seconds   = 3
        failure_threshold = 3
        http_get {
          path = "/healthz"
        }
      }
    }
  }

  # Without a pinned stable revision: all traffic to the latest ready revision.
  dynamic "traffic" {
    for_each = local.canary ? [] : [1]
    content {
      type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
      percent = 100
    }
  }

  # Canary: the latest revision gets canary_percent, the pinned stable revision the rest.
  dynamic "traffic" {
    for_each = local.canary ? [1] : []
    content {
      type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
      percent = var.canary_percent
      tag     = "canary"
    }
  }

  dynamic "traffic" {
    for_each = local.canary ? [1] : []
    content {
      type     = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
      revision = var.stable_revision
      percent  = 100 - var.canary_percent
      tag      = "stable"
    }
  }

  lifecycle {
    # CI deploys new images (gcloud run deploy --image); Terraform owns everything else.
    ignore_changes = [
      client,
      client_version,
      template[0].containers[0].image,
    ]
  }
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = var.invokers

  project  = var.project_id
  location = google_cloud_run_v2_service.this.location
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = each.value
}

# The one public binding of the platform, off by default: with public_invoker = true anyone
# can call the service, and the API's own keys (security.auth: on) are the only access control.
# (checkov's public-invoker check covers only the v1 resource; tests/infra/test_terraform.py
# allows allUsers here and nowhere else.)
resource "google_cloud_run_v2_service_iam_member" "public_invoker" {
  count = var.public_invoker ? 1 : 0

  project  = var.project_id
  location = google_cloud_run_v2_service.this.location
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
