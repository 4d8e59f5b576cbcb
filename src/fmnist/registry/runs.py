"""Small helpers around tracked runs shared by the search, baseline and leaderboard commands."""

from __future__ import annotations

from typing import Any

from fmnist.config import Settings


def flatten_params(value: Any, prefix: str = "") -> dict[str, object]:
    """Nested dicts as one level of dotted keys (MLflow parameters)."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, inner in value.items():
            out |= flatten_params(inner, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: value}


def with_registered_model(settings: Settings, name: str) -> Settings:
    """A copy of ``settings`` whose registry calls address registered model ``name``."""
    tracking = settings.tracking.model_copy(update={"registered_model": name})
    return settings.model_copy(update={"tracking": tracking})
