output "secret_ids" {
  description = "secret_id of each secret, by short name (Cloud Run env references these)."
  value       = { for k, v in google_secret_manager_secret.this : k => v.secret_id }
}

output "secret_names" {
  description = "Resource name (projects/<n>/secrets/<id>) of each secret, by short name."
  value       = { for k, v in google_secret_manager_secret.this : k => v.name }
}
