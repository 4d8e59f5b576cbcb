"""Monitoring: the durable prediction log, feedback, drift detection, alerts and reports."""
