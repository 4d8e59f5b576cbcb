# Cloud Build triggers of the GitHub repository: every push to main and every release tag
# (v*) runs cloudbuild.yaml at the repository root as the CI deployer service account (not the
# legacy Cloud Build account). The repository must be connected to Cloud Build once by hand
# (GitHub App installation: docs/gcp.md).

locals {
  triggers = {
    main = {
      description = "Build, test and deploy on every push to main."
      branch      = var.main_branch
      tag         = null
      approval    = false
    }
    release = {
      description = "Build and deploy a release on every version tag."
      branch      = null
      tag         = var.release_tag_pattern
      approval    = var.require_release_approval
    }
  }
}

resource "google_cloudbuild_trigger" "this" {
  for_each = local.triggers

  project            = var.project_id
  location           = var.location
  name               = "${var.name_prefix}-${each.key}"
  description        = each.value.description
  filename           = var.build_config
  service_account    = "projects/${var.project_id}/serviceAccounts/${var.service_account}"
  include_build_logs = "INCLUDE_BUILD_LOGS_WITH_STATUS"
  substitutions      = var.substitutions
  tags               = [var.name_prefix, each.key]

  github {
    owner = var.github_owner
    name  = var.github_name

    push {
      branch = each.value.branch
      tag    = each.value.tag
    }
  }

  approval_config {
    approval_required = each.value.approval
  }
}
