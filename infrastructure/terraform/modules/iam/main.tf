# One service account per workload, project-level roles only where Google offers no
# resource-level grant (logs, metrics, traces, Vertex AI jobs, Cloud Run deploys), and
# Workload Identity Federation for GitHub Actions: keyless, restricted to one repository.
# Resource-level grants (buckets, dataset, topics, secrets, repository, jobs) are made by the
# module owning the resource.

locals {
  accounts = {
    serving = {
      display_name = "fmnist serving (Cloud Run API)"
      description  = "Runs the prediction API: reads models and artifacts, publishes prediction and feedback events, reads its secrets."
      roles = [
        "roles/logging.logWriter",
        "roles/monitoring.metricWriter",
        "roles/cloudtrace.agent",
      ]
    }
    pipelines = {
      display_name = "fmnist pipelines (training, Vertex AI Pipelines, Dataflow launches)"
      description  = "Runs training and retraining: writes artifacts and models, registers models, launches Dataflow jobs."
      roles = [
        "roles/logging.logWriter",
        "roles/monitoring.metricWriter",
        "roles/aiplatform.user",
        "roles/bigquery.jobUser",
        "roles/dataflow.developer",
      ]
    }
    ci_deployer = {
      display_name = "fmnist CI deployer (Cloud Build, GitHub Actions)"
      description  = "Builds and pushes images and deploys Cloud Run revisions and jobs; no data access."
      roles = [
        "roles/logging.logWriter",
        "roles/run.developer",
      ]
    }
    monitor = {
      display_name = "fmnist monitor and scheduler"
      description  = "Runs the drift check and the analytics consumer; Cloud Scheduler calls the Cloud Run jobs as it."
      roles = [
        "roles/logging.logWriter",
        "roles/monitoring.metricWriter",
        "roles/bigquery.jobUser",
      ]
    }
  }

  project_roles = merge([
    for name, account in local.accounts : {
      for role in account.roles : "${name}/${role}" => { account = name, role = role }
    }
  ]...)

  # CI deploys revisions and jobs that run as the runtime accounts: it needs actAs on them.
  # The pipelines account submits Vertex AI pipeline jobs that run as itself.
  act_as = {
    "ci_deployer/serving"   = { account = "serving", member = "ci_deployer" }
    "ci_deployer/pipelines" = { account = "pipelines", member = "ci_deployer" }
    "ci_deployer/monitor"   = { account = "monitor", member = "ci_deployer" }
    "pipelines/pipelines"   = { account = "pipelines", member = "pipelines" }
  }
}

resource "google_service_account" "this" {
  for_each = local.accounts

  project      = var.project_id
  account_id   = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  display_name = each.value.display_name
  description  = each.value.description
}

resource "google_project_iam_member" "this" {
  for_each = local.project_roles

  project = var.project_id
  role    = each.value.role
  member  = google_service_account.this[each.value.account].member
}

resource "google_service_account_iam_member" "act_as" {
  for_each = local.act_as

  service_account_id = google_service_account.this[each.value.account].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.this[each.value.member].member
}

# --- Workload Identity Federation for GitHub Actions (no service account keys) --------------

resource "google_iam_workload_identity_pool" "github" {
  project                   = var.project_id
  workload_identity_pool_id = var.wif_pool_id
  display_name              = "GitHub Actions"
  description               = "OIDC tokens of GitHub Actions runs of ${var.github_repository}."
}

resource "google_iam_workload_identity_pool_provider" "github" {
  #checkov:skip=CKV_GCP_125:False positive: checkov cannot evaluate the generated condition. It requires assertion.repository == github_repository AND an exact assertion.sub == 'repo:<owner>/<name>:<context>' for each allowed context (github_subjects, validated to hold no wildcard).
  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.github.workload_identity_pool_id
  workload_identity_pool_provider_id = "github-actions"
  display_name                       = "GitHub Actions OIDC"

  attribute_mapping = {
    "google.subject"             = "assertion.sub"
    "attribute.repository"       = "assertion.repository"
    "attribute.repository_owner" = "assertion.repository_owner"
    "attribute.ref"              = "assertion.ref"
    "attribute.workflow_ref"     = "assertion.job_workflow_ref"
  }

  # Only tokens minted for this repository and for one of the allowed subjects (by default
  # pushes to main) are accepted at all; sub is "repo:<owner>/<name>:<context>".
  attribute_condition = "assertion.repository == '${var.github_repository}' && (${join(" || ", [for s in var.github_subjects : "assertion.sub == 'repo:${var.github_repository}:${s}'"])})"

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
}

resource "google_service_account_iam_member" "github_ci" {
  service_account_id = google_service_account.this["ci_deployer"].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/attribute.repository/${var.github_repository}"
}
