"""Tests of the infrastructure definitions (Kubernetes manifests, Terraform)."""
