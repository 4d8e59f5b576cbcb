provider "google" {
  project = var.project_id
  region  = var.region

  # Billing budgets and a few other APIs bill the quota to the caller's project.
  user_project_override = true
  billing_project       = var.project_id
}

provider "google-beta" {
  project = var.project_id
  region  = var.region

  user_project_override = true
  billing_project       = var.project_id
}
