"""KFP v2 lightweight Python components: one per step of the lifecycle.

Each component runs one ``fmnist`` command in the project's trainer image
(``FMNIST_PIPELINE_IMAGE`` when compiling; ``kfp.local``'s subprocess runner ignores it and
uses this interpreter) and passes on what the command printed as JSON, so a pipeline step is
exactly what a person would run. The settings come from the environment of the step
(``FMNIST_HOME``, ``FMNIST_CONFIG``, ``FMNIST_*``).
"""

# No ``from __future__ import annotations``: KFP reads the parameter and return types.
import os
from collections.abc import Callable
from typing import Any, NamedTuple

from kfp import dsl

from fmnist import __version__

IMAGE_ENV = "FMNIST_PIPELINE_IMAGE"
DEFAULT_IMAGE = f"fmnist-trainer:{__version__}"


def pipeline_image() -> str:
    """The image every component runs in (the trainer image of ``services/``)."""
    return os.environ.get(IMAGE_ENV, DEFAULT_IMAGE)


def run_fmnist(*args: str, json_flag: bool = True) -> dict:  # type: ignore[type-arg]
    """Run ``fmnist ARGS --json`` (or without ``--json``) with this interpreter; the JSON
    object it printed last. Shipped inside the components (``additional_funcs``)."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "fmnist", *args, *(["--json"] if json_flag else [])],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"fmnist {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def _component(func: Callable[..., Any]) -> Any:
    """A lightweight component of ``func`` in the pipeline image (kfp is in the image)."""
    return dsl.component(
        func,
        base_image=pipeline_image(),
        install_kfp_package=False,
        additional_funcs=[run_fmnist],
    )


@_component
def snapshot() -> str:
    """``fmnist data snapshot``: ingest (checksums), validate (schema, balance, blanks,
    duplicates, leakage) and write the snapshot; its id. Fails when validation fails."""
    return str(run_fmnist("data", "snapshot")["snapshot_id"])


@_component
def train(snapshot_id: str, preset: str, max_minutes: float) -> str:
    """``fmnist train``: train ``preset`` on the snapshot, tracked in MLflow; the run id."""
    args = ["train", "--preset", preset, "--snapshot", snapshot_id, "--no-progress"]
    if max_minutes:
        args += ["--max-minutes", str(max_minutes)]
    return str(run_fmnist(*args)["run_id"])


@_component
def evaluate_and_register(run_id: str, promote: bool) -> NamedTuple(  # type: ignore[valid-type]  # KFP reads the outputs from this form
    "EvaluationOutputs",
    [("accuracy", float), ("gates_passed", bool), ("version", int), ("promoted", bool)],
):
    """``fmnist evaluate``: the exported model on the test set, the gates, registration with
    its model card, promotion when the gates pass and ``promote`` is true."""
    from collections import namedtuple

    flag = "--promote" if promote else "--no-promote"
    result = run_fmnist("evaluate", run_id, flag)
    outputs = namedtuple("outputs", ["accuracy", "gates_passed", "version", "promoted"])
    version = int(result["version"] or 0)
    return outputs(result["accuracy"], result["gates_passed"], version, result["promoted"])


@_component
def batch_predict(model_ref: str, input_uri: str, output_uri: str) -> int:
    """``fmnist predict batch`` of ``input_uri`` into the Parquet file ``output_uri``; rows."""
    import subprocess
    import sys

    import pyarrow.parquet as pq

    command = [
        sys.executable, "-m", "fmnist", "predict", "batch", input_uri, output_uri,
        "--model", model_ref, "--no-progress", "--overwrite",
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return int(pq.read_metadata(output_uri).num_rows)


@_component
def drift_check() -> bool:
    """``fmnist monitor run --once``: one drift check, its alerts and, with
    ``retraining.auto``, the closed loop; whether drift was detected."""
    result = run_fmnist("monitor", "run", "--once", "--port", "0", json_flag=False)
    return bool(result["drift_detected"])
