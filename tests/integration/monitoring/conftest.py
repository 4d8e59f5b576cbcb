"""Fixtures of the monitoring-stack tests (defined in :mod:`prometheus_fixtures`)."""

from .prometheus_fixtures import monitoring_models, monitoring_stack

__all__ = ["monitoring_models", "monitoring_stack"]
