"""The leaderboard (``fmnist benchmark``): every model trained, registered and measured alike.

For each leaderboard model the preset named in
:data:`~fmnist.training.config.LEADERBOARD_PRESETS` is trained with
:func:`~fmnist.training.run.train_and_log`, unless a finished tracked run with the same
``fmnist.config_hash`` on the same snapshot exists (then it is reused). The run is evaluated and
registered under the model's own name (``cnn``, ``resnet``, ...), so ``fmnist serve`` answers
``POST /v1/predict?model=NAME`` with it; a run already registered under that name is not
registered twice. The exported ONNX file is measured with ONNX Runtime on one thread
(:mod:`fmnist.pipelines.leaderboard_measure`).

The ``ensemble`` row soft-votes the registered members (:mod:`fmnist.pipelines.leaderboard_members`)
and registers the result as ``ensemble``. ``baselines`` adds the classical scikit-learn models
(not registered: no ONNX).

Outputs (:mod:`fmnist.pipelines.leaderboard_page`), each written atomically: ``benchmarks.json``
(a list of rows), ``benchmarks.md`` (the table, the command behind each row, and where the
classical baselines land against the published benchmark) and ``images/benchmarks.png``. Rows of
models not run this time are kept from the existing JSON.

Everything external comes from the ``services`` passed in: the lake, the tracking store and the
registry of each model name.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmnist.errors import ConfigError
from fmnist.pipelines.leaderboard_measure import machine_info, measure_onnx, onnx_megabytes
from fmnist.pipelines.leaderboard_members import (
    ENSEMBLE,
    STEP_ENSEMBLE,
    BenchmarkError,
    build_ensemble_run,
    ensemble_digest,
    load_member,
)
from fmnist.pipelines.leaderboard_page import LeaderboardRow, merge_rows, read_rows, write_outputs
from fmnist.training.config import LEADERBOARD_PRESETS, leaderboard_config

if TYPE_CHECKING:
    from fmnist.data.snapshot import Snapshot
    from fmnist.platform.registry import ModelRegistry, ModelVersionInfo, RunRecord
    from fmnist.platform.services import Services

__all__ = [
    "BASELINES",
    "DEFAULT_MODELS",
    "ENSEMBLE",
    "BenchmarkError",
    "BenchmarkOptions",
    "BenchmarkResult",
    "LeaderboardRow",
    "benchmark_command",
    "parse_models",
    "run_benchmark",
]

BASELINES = "baselines"
NEURAL_MODELS: tuple[str, ...] = tuple(LEADERBOARD_PRESETS)
DEFAULT_MODELS: tuple[str, ...] = (*NEURAL_MODELS, ENSEMBLE, BASELINES)
DEFAULT_ENSEMBLE_MEMBERS: tuple[str, ...] = ("cnn", "resnet", "vit")


@dataclass
class BenchmarkOptions:
    """What ``fmnist benchmark`` was asked for."""

    models: Sequence[str] = DEFAULT_MODELS
    preset: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """TrainConfig fields set on every neural model (``epochs``, ``train_subset``, ...)."""
    reuse: bool = True
    out: Path = Path("docs")
    snapshot_id: str | None = None
    quantize: bool = True
    baseline_minutes: float | None = None
    baseline_subset: int | None = None
    ensemble_members: Sequence[str] | None = None
    show_progress: bool = False


@dataclass
class BenchmarkResult:
    """The rows produced now, every row written, and where the files are."""

    rows: list[LeaderboardRow]
    all_rows: list[LeaderboardRow]
    files: dict[str, Path]
    skipped: dict[str, str] = field(default_factory=dict)


def benchmark_command(name: str, options: BenchmarkOptions, snapshot_id: str) -> str:
    """The ``fmnist benchmark`` command line that reproduces the row of ``name``."""
    parts = ["fmnist", "benchmark", "--models", name]
    if options.preset and name != BASELINES:
        parts += ["--preset", options.preset]
    if name == BASELINES:
        if options.baseline_minutes is not None:
            parts += ["--baseline-minutes", f"{options.baseline_minutes:g}"]
        if options.baseline_subset is not None:
            parts += ["--baseline-subset", str(options.baseline_subset)]
    else:
        flags = {
            "epochs": "--epochs",
            "train_subset": "--train-subset",
            "threads": "--threads",
            "max_minutes": "--max-minutes",
            "seed": "--seed",
        }
        for key, flag in flags.items():
            value = options.overrides.get(key)
            if value is not None:
                parts += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if name == ENSEMBLE and options.ensemble_members:
        parts += ["--ensemble-members", ",".join(options.ensemble_members)]
    parts += ["--snapshot", snapshot_id]
    return shlex.join(parts)


def _classical_note(n_train: int, available: int, effort: float) -> str:
    note = "not registered for serving (scikit-learn, no ONNX export)"
    if n_train < available:
        note += f"; fitted on {n_train:,} of {available:,} images to fit the time budget"
    if effort < 1.0:
        note += f"; {effort:.0%} of its iterations or trees to fit the time budget"
    return note


def _stopped_note(stopped: str) -> str:
    if stopped == "completed":
        return ""
    return f"training stopped early ({stopped.replace('_', ' ')})"


def _version_of_run(registry: ModelRegistry, run_id: str) -> ModelVersionInfo | None:
    versions = [v for v in registry.list_versions() if v.run_id == run_id]
    return versions[0] if versions else None


class _Leaderboard:
    def __init__(self, services: Services, options: BenchmarkOptions) -> None:
        from fmnist.data.snapshot import load_snapshot

        self.services = services
        self.home = services.settings.home
        self.options = options
        self.registry = services.registry()
        self.snapshot: Snapshot = load_snapshot(services.storage, options.snapshot_id)
        self.sid = self.snapshot.snapshot_id
        self.machine = machine_info()
        self.test_images = self.snapshot.split("test")[0]

    def _reusable(
        self, step: str, config_hash: str, accept: Callable[[RunRecord], bool]
    ) -> RunRecord | None:
        """The newest finished run of ``step`` with this hash on this snapshot that
        ``accept`` takes (none when reuse is off)."""
        if not self.options.reuse:
            return None
        tags = {
            "fmnist.step": step,
            "fmnist.config_hash": config_hash,
            "fmnist.snapshot_id": self.sid,
        }
        return next((r for r in self.registry.find_runs(tags, max_results=20) if accept(r)), None)

    def _run_files(self, run_id: str) -> Path:
        local = self.home / "runs" / run_id
        if (local / "model.onnx").is_file() and (local / "weights.pt").is_file():
            return local
        return self.registry.download_run_artifacts(
            run_id, "training", local.parent / f"{run_id}-dl"
        )

    def _register_and_measure(
        self,
        name: str,
        run_id: str,
        *,
        reused: bool,
        base: dict[str, Any],
    ) -> LeaderboardRow:
        """Evaluate and register ``run_id`` as ``name`` (once), then measure its ONNX model."""
        from fmnist.evaluation.run import evaluate_and_register

        named = self.services.registry(name)
        version = _version_of_run(named, run_id)
        metrics = self.registry.run_record(run_id).metrics
        ece: float | None
        if version is None or "test_accuracy" not in metrics:
            outcome = evaluate_and_register(
                self.services,
                run_id,
                model_name=name,
                register=version is None,
                quantize=self.options.quantize,
            )
            version = outcome.version or version
            accuracy, macro_f1, ece = (
                outcome.report.accuracy,
                outcome.report.macro_f1,
                outcome.report.ece,
            )
        else:
            accuracy, macro_f1 = metrics["test_accuracy"], metrics["test_macro_f1"]
            ece = metrics.get("test_ece")
        if version is not None:
            version = named.get(str(version.version))  # fresh aliases
        onnx = self._run_files(run_id) / "model.onnx"
        bench = self.services.settings.benchmark
        latency, throughput = measure_onnx(
            onnx,
            self.test_images[:256],
            threads=bench.ort_threads,
            latency_runs=bench.latency_runs,
            throughput_seconds=bench.throughput_seconds,
        )
        size = onnx_megabytes(onnx)
        self.registry.log_metrics(
            run_id,
            {
                "bench_latency_ms_b1": latency,
                "bench_throughput_b256": throughput,
                "bench_onnx_mb": size,
            },
        )
        return LeaderboardRow(
            model=name,
            test_accuracy=accuracy,
            macro_f1=macro_f1,
            ece=ece,
            onnx_mb=round(size, 3),
            latency_ms_b1=round(latency, 4),
            throughput_b256=round(throughput, 1),
            command=benchmark_command(name, self.options, self.sid),
            run_id=run_id,
            snapshot_id=self.sid,
            registered_model=name if version is not None else None,
            version=version.version if version is not None else None,
            champion=version is not None and "champion" in version.aliases,
            gates_passed=(version.tags.get("gate.passed") == "true") if version else None,
            reused=reused,
            measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
            machine=self.machine,
            **base,
        )

    def neural(self, name: str) -> LeaderboardRow:
        """Train (or reuse), register and measure leaderboard model ``name``."""
        from fmnist.training.run import train_and_log

        config = leaderboard_config(name, self.options.preset, self.options.overrides)
        digest = config.config_hash()

        def complete(run: RunRecord) -> bool:
            stopped = run.params.get("stopped")
            return stopped != "time_budget" or config.max_minutes is not None

        found = self._reusable("train", digest, complete)
        if found is not None:
            run_id = found.run_id
        else:
            run_id = train_and_log(
                self.services,
                config,
                snapshot_id=self.sid,
                show_progress=self.options.show_progress,
            ).run_id
        run = self.registry.run_record(run_id)
        n_train = len(self.snapshot.split("train")[1])
        if config.train_subset is not None:
            n_train = min(n_train, config.train_subset)
        return self._register_and_measure(
            name,
            run_id,
            reused=found is not None,
            base={
                "kind": "neural",
                "architecture": config.model,
                "params": int(run.params["parameters"]),
                "train_seconds": round(run.metrics["train_seconds"], 1),
                "precision": run.params.get("precision_used", "?"),
                "threads": int(run.params["threads_used"]),
                "n_train": n_train,
                "epochs": config.epochs,
                "config_hash": digest,
                "notes": _stopped_note(run.params.get("stopped", "completed")),
            },
        )

    def ensemble(
        self, members: Sequence[str], rows: Mapping[str, LeaderboardRow]
    ) -> LeaderboardRow:
        """Soft-vote the registered ``members`` and register the result as ``ensemble``."""
        loaded = []
        for name in members:
            row = rows.get(name)
            version = row.version if row is not None else None
            loaded.append(load_member(self.services.registry(name), self.registry, name, version))
        digest = ensemble_digest(loaded)
        found = self._reusable(STEP_ENSEMBLE, digest, lambda run: True)
        run_id = (
            found.run_id
            if found is not None
            else build_ensemble_run(self.registry, self.snapshot, self.home, loaded, digest)
        )
        run = self.registry.run_record(run_id)
        return self._register_and_measure(
            ENSEMBLE,
            run_id,
            reused=found is not None,
            base={
                "kind": "ensemble",
                "architecture": "+".join(m.name for m in loaded),
                "params": int(run.params["parameters"]),
                "train_seconds": round(run.metrics["train_seconds"], 1),
                "precision": run.params["precision_used"],
                "threads": None,
                "n_train": None,
                "epochs": None,
                "config_hash": digest,
                "members": json.loads(run.params["members"]),
            },
        )

    def classical(self) -> list[LeaderboardRow]:
        """The classical baselines as rows (not registered: no ONNX)."""
        from fmnist.training.baselines import run_baselines

        results = run_baselines(
            self.services,
            max_minutes=self.options.baseline_minutes,
            train_subset=self.options.baseline_subset,
            snapshot_id=self.sid,
            reuse=self.options.reuse,
        )
        command = benchmark_command(BASELINES, self.options, self.sid)
        return [
            LeaderboardRow(
                model=r.model,
                kind="classical",
                architecture=r.description,
                params=None,
                test_accuracy=r.test_accuracy,
                macro_f1=r.macro_f1,
                ece=None,
                train_seconds=round(r.fit_seconds, 1),
                precision=r.precision,
                threads=r.threads,
                n_train=r.n_train,
                epochs=None,
                onnx_mb=None,
                latency_ms_b1=None,
                throughput_b256=None,
                command=command,
                run_id=r.run_id,
                config_hash=r.config_hash,
                snapshot_id=r.snapshot_id,
                registered_model=None,
                version=None,
                champion=False,
                gates_passed=None,
                reused=r.reused,
                measured_at=r.measured_at,
                machine=self.machine,
                notes=_classical_note(r.n_train, r.n_train_available, r.effort),
            )
            for r in results
        ]


def parse_models(text: str | Sequence[str]) -> list[str]:
    """Validated, de-duplicated model keys from ``cnn,resnet,...``."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    names = list(dict.fromkeys(n for n in names if n))
    unknown = [n for n in names if n not in DEFAULT_MODELS]
    if unknown or not names:
        raise ConfigError(
            f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from: "
            + ", ".join(DEFAULT_MODELS)
        )
    return names


def run_benchmark(
    services: Services,
    options: BenchmarkOptions,
    on_row: Callable[[LeaderboardRow], None] | None = None,
) -> BenchmarkResult:
    """Produce the rows of ``options.models`` and write the JSON, Markdown and PNG files."""
    names = parse_models(options.models)
    board = _Leaderboard(services, options)
    rows: list[LeaderboardRow] = []
    by_name: dict[str, LeaderboardRow] = {}
    skipped: dict[str, str] = {}

    def add(row: LeaderboardRow) -> None:
        rows.append(row)
        by_name[row.model] = row
        if on_row is not None:
            on_row(row)

    for name in names:
        if name in NEURAL_MODELS:
            add(board.neural(name))
    if ENSEMBLE in names:
        members = list(options.ensemble_members or [])
        if not members:
            members = [n for n in names if n in NEURAL_MODELS] or list(DEFAULT_ENSEMBLE_MEMBERS)
        if len(members) < 2:
            skipped[ENSEMBLE] = f"an ensemble needs two or more members, got {members}"
        else:
            add(board.ensemble(members, by_name))
    if BASELINES in names:
        for row in board.classical():
            add(row)

    all_rows = merge_rows(read_rows(options.out / "benchmarks.json"), rows)
    files = write_outputs(options.out, all_rows)
    return BenchmarkResult(rows=rows, all_rows=all_rows, files=files, skipped=skipped)
