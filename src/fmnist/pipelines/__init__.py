"""Pipelines: the lifecycle steps wired together (local runner; KFP and Beam later)."""
