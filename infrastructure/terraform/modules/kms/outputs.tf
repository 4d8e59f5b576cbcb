output "key_ring_id" {
  description = "The key ring's resource id."
  value       = google_kms_key_ring.this.id
}

output "key_ids" {
  description = "Resource id of each key (projects/.../cryptoKeys/<use>), by use."
  value       = { for k, v in google_kms_crypto_key.this : k => v.id }
}

output "grants" {
  description = "The key grants (depend on this output so a resource is created only after its key is usable)."
  value       = [for g in google_kms_crypto_key_iam_member.encrypter_decrypter : g.id]
}
