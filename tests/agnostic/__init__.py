"""Tests of the cloud-agnostic profile on real servers (`make test-agnostic`)."""
