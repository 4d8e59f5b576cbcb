# One key ring per environment and one symmetric key per use (storage, BigQuery, Pub/Sub, ...),
# rotated every 90 days. Each key is granted to exactly the identities that encrypt with it
# (mostly Google service agents); nobody gets key administration through this module.

resource "google_kms_key_ring" "this" {
  project  = var.project_id
  name     = var.key_ring_name
  location = var.location
}

resource "google_kms_crypto_key" "this" {
  for_each = var.keys

  name                       = each.key
  key_ring                   = google_kms_key_ring.this.id
  purpose                    = "ENCRYPT_DECRYPT"
  rotation_period            = var.rotation_period
  destroy_scheduled_duration = var.destroy_scheduled_duration
  labels                     = merge(var.labels, { use = each.key })

  version_template {
    algorithm        = "GOOGLE_SYMMETRIC_ENCRYPTION"
    protection_level = var.protection_level
  }

  lifecycle {
    prevent_destroy = true
  }
}

locals {
  grants = merge([
    for key, spec in var.keys : {
      for name, member in spec.encrypters : "${key}/${name}" => {
        key    = key
        member = member
      }
    }
  ]...)
}

resource "google_kms_crypto_key_iam_member" "encrypter_decrypter" {
  for_each = local.grants

  crypto_key_id = google_kms_crypto_key.this[each.value.key].id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value.member
}
