# A private VPC: one regional subnet with Private Google Access and flow logs, no default
# internet route (Google APIs are reached through private.googleapis.com / restricted.googleapis.com
# and a private DNS zone), firewall default deny in both directions with logging. Cloud Run
# reaches it through Direct VPC egress (no connector). An optional VPC Service Controls
# perimeter (enable_vpc_sc) puts the project's data services behind the perimeter.

locals {
  # private.googleapis.com, or restricted.googleapis.com inside a VPC-SC perimeter.
  google_apis_vip    = var.enable_vpc_sc ? "restricted" : "private"
  google_apis_ranges = { private = "199.36.153.8/30", restricted = "199.36.153.4/30" }
  google_apis_ips = {
    private    = ["199.36.153.8", "199.36.153.9", "199.36.153.10", "199.36.153.11"]
    restricted = ["199.36.153.4", "199.36.153.5", "199.36.153.6", "199.36.153.7"]
  }
}

resource "google_compute_network" "this" {
  project                         = var.project_id
  name                            = var.network_name
  auto_create_subnetworks         = false
  routing_mode                    = "REGIONAL"
  delete_default_routes_on_create = true
}

resource "google_compute_subnetwork" "this" {
  project                  = var.project_id
  name                     = "${var.network_name}-${var.region}"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = var.flow_log_sampling
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# The only route out: to the Google APIs' private VIPs (no internet egress, no NAT).
resource "google_compute_route" "google_apis" {
  for_each = local.google_apis_ranges

  project          = var.project_id
  name             = "${var.network_name}-${each.key}-googleapis"
  network          = google_compute_network.this.id
  dest_range       = each.value
  next_hop_gateway = "default-internet-gateway"
  priority         = 1000
}

resource "google_dns_managed_zone" "googleapis" {
  project     = var.project_id
  name        = "${var.network_name}-googleapis"
  dns_name    = "googleapis.com."
  description = "Resolves *.googleapis.com to ${local.google_apis_vip}.googleapis.com inside the VPC."
  visibility  = "private"
  labels      = var.labels

  private_visibility_config {
    networks {
      network_url = google_compute_network.this.id
    }
  }
}

resource "google_dns_record_set" "googleapis_vip" {
  project      = var.project_id
  managed_zone = google_dns_managed_zone.googleapis.name
  name         = "${local.google_apis_vip}.googleapis.com."
  type         = "A"
  ttl          = 300
  rrdatas      = local.google_apis_ips[local.google_apis_vip]
}

resource "google_dns_record_set" "googleapis_wildcard" {
  project      = var.project_id
  managed_zone = google_dns_managed_zone.googleapis.name
  name         = "*.googleapis.com."
  type         = "CNAME"
  ttl          = 300
  rrdatas      = ["${local.google_apis_vip}.googleapis.com."]
}

# --- private services access (the Vertex AI private endpoint lives in this range) ----------

resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "${var.network_name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  address       = split("/", var.private_services_cidr)[0]
  prefix_length = tonumber(split("/", var.private_services_cidr)[1])
  network       = google_compute_network.this.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.this.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}

# --- firewall: default deny, then the few flows the platform needs -------------------------

resource "google_compute_firewall" "deny_all_ingress" {
  project     = var.project_id
  name        = "${var.network_name}-deny-all-ingress"
  network     = google_compute_network.this.id
  direction   = "INGRESS"
  priority    = 65534
  description = "Default deny: nothing reaches the VPC unless a rule below allows it."

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "deny_all_egress" {
  project     = var.project_id
  name        = "${var.network_name}-deny-all-egress"
  network     = google_compute_network.this.id
  direction   = "EGRESS"
  priority    = 65534
  description = "Default deny: nothing leaves the VPC unless a rule below allows it."

  deny {
    protocol = "all"
  }

  destination_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "allow_google_apis_egress" {
  project     = var.project_id
  name        = "${var.network_name}-allow-googleapis-egress"
  network     = google_compute_network.this.id
  direction   = "EGRESS"
  priority    = 1000
  description = "HTTPS to the Google APIs' private VIPs (Private Google Access)."

  allow {
    protocol = "tcp"
    ports    = ["443"]
  }

  destination_ranges = values(local.google_apis_ranges)

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# The API (Direct VPC egress) calls the Vertex AI private endpoint in the peered range.
resource "google_compute_firewall" "allow_private_services_egress" {
  project     = var.project_id
  name        = "${var.network_name}-allow-private-services-egress"
  network     = google_compute_network.this.id
  direction   = "EGRESS"
  priority    = 1000
  description = "HTTP(S) to private services (the Vertex AI private endpoint)."

  allow {
    protocol = "tcp"
    ports    = ["80", "443", "8080"]
  }

  destination_ranges = [var.private_services_cidr]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Dataflow workers talk to each other (shuffle) on 12345-12346, inside the subnet only.
resource "google_compute_firewall" "allow_dataflow_ingress" {
  project     = var.project_id
  name        = "${var.network_name}-allow-dataflow-ingress"
  network     = google_compute_network.this.id
  direction   = "INGRESS"
  priority    = 1000
  description = "Dataflow worker to worker traffic."

  allow {
    protocol = "tcp"
    ports    = ["12345-12346"]
  }

  source_tags = [var.dataflow_network_tag]
  target_tags = [var.dataflow_network_tag]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "allow_dataflow_egress" {
  project     = var.project_id
  name        = "${var.network_name}-allow-dataflow-egress"
  network     = google_compute_network.this.id
  direction   = "EGRESS"
  priority    = 1000
  description = "Dataflow worker to worker traffic."

  allow {
    protocol = "tcp"
    ports    = ["12345-12346"]
  }

  destination_ranges = [var.subnet_cidr]
  target_tags        = [var.dataflow_network_tag]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# --- optional VPC Service Controls perimeter ---------------------------------------------------

resource "google_access_context_manager_service_perimeter" "this" {
  count = var.enable_vpc_sc ? 1 : 0

  parent         = "accessPolicies/${var.access_policy_id}"
  name           = "accessPolicies/${var.access_policy_id}/servicePerimeters/${replace(var.network_name, "-", "_")}"
  title          = var.network_name
  perimeter_type = "PERIMETER_TYPE_REGULAR"

  # Dry run first: violations are logged, nothing is blocked until vpc_sc_enforced is true.
  use_explicit_dry_run_spec = !var.vpc_sc_enforced

  dynamic "status" {
    for_each = var.vpc_sc_enforced ? [1] : []
    content {
      resources           = ["projects/${var.project_number}"]
      restricted_services = var.vpc_sc_restricted_services
      access_levels       = var.vpc_sc_access_levels

      vpc_accessible_services {
        enable_restriction = true
        allowed_services   = ["RESTRICTED-SERVICES"]
      }
    }
  }

  dynamic "spec" {
    for_each = var.vpc_sc_enforced ? [] : [1]
    content {
      resources           = ["projects/${var.project_number}"]
      restricted_services = var.vpc_sc_restricted_services
      access_levels       = var.vpc_sc_access_levels

      vpc_accessible_services {
        enable_restriction = true
        allowed_services   = ["RESTRICTED-SERVICES"]
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.access_policy_id != null && var.project_number != null
      error_message = "enable_vpc_sc needs access_policy_id (the organization's Access Context Manager policy) and project_number."
    }
  }
}
