"""Small helpers around MLflow runs shared by the search, baseline and leaderboard commands."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from fmnist.config import Settings
from fmnist.registry.mlflow_registry import MlflowRegistry


@contextlib.contextmanager
def client_run(
    registry: MlflowRegistry,
    run_name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
) -> Iterator[str]:
    """An MLflow run made through the client, not the fluent API's single active run, so
    several may be open at once (a parent and its child, or a run around ``train_and_log``).

    Yields its id; it ends FINISHED, or FAILED when the block raises.
    """
    all_tags = dict(tags)
    if parent_run_id is not None:
        all_tags["mlflow.parentRunId"] = parent_run_id
    client = registry.client
    run = client.create_run(registry.experiment_id(), tags=all_tags, run_name=run_name)
    run_id = str(run.info.run_id)
    try:
        yield run_id
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")


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
