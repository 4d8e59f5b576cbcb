output "repository_id" {
  description = "The repository's resource id."
  value       = google_artifact_registry_repository.this.id
}

output "image_prefix" {
  description = "Prefix of image references: <location>-docker.pkg.dev/<project>/<repository>."
  value       = "${var.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.this.repository_id}"
}

output "name" {
  description = "The repository's name (repository_id)."
  value       = google_artifact_registry_repository.this.name
}
