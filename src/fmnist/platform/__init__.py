"""Ports (small interfaces) and their adapters for the local, GCP and cloud-agnostic modes."""
