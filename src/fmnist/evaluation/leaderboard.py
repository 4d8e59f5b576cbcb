"""The leaderboard (``fmnist benchmark``): every model trained, registered and measured alike.

For each leaderboard model the preset named in
:data:`~fmnist.training.config.LEADERBOARD_PRESETS` is trained with
:func:`~fmnist.training.run.train_and_log`, unless a finished MLflow run with the same
``fmnist.config_hash`` on the same snapshot exists (then it is reused). The run is evaluated and
registered under the model's own name (``cnn``, ``resnet``, ...), so ``fmnist serve`` answers
``POST /v1/predict?model=NAME`` with it; a run already registered under that name is not
registered twice. The exported ONNX file is measured with ONNX Runtime on one thread: its size,
the median latency of batch-1 calls and the throughput at batch 256.

The ``ensemble`` row soft-votes the registered members' PyTorch weights (maximum-likelihood
weights fitted on the validation split, with horizontal-flip TTA when it lowers the validation
NLL; see :func:`fmnist.models.mixture_weights`), exports the ensemble as one ONNX graph and
registers it as ``ensemble``. ``baselines`` adds the classical scikit-learn models (not
registered: no ONNX).

Outputs, each written atomically: ``benchmarks.json`` (a list of rows), ``benchmarks.md`` (the
table, the command behind each row, and where the classical baselines land against the
published benchmark) and ``images/benchmarks.png``. Rows of models not run this time are kept
from the existing JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from fmnist.atomic import atomic_write_bytes, atomic_write_text
from fmnist.config import Settings
from fmnist.errors import ConfigError, FmnistError
from fmnist.registry.runs import with_registered_model
from fmnist.training.config import LEADERBOARD_PRESETS, PRESETS, TrainConfig

if TYPE_CHECKING:
    from torch import nn

    from fmnist.data.snapshot import Snapshot
    from fmnist.registry.mlflow_registry import MlflowRegistry, ModelVersionInfo

ENSEMBLE = "ensemble"
BASELINES = "baselines"
NEURAL_MODELS: tuple[str, ...] = tuple(LEADERBOARD_PRESETS)
DEFAULT_MODELS: tuple[str, ...] = (*NEURAL_MODELS, ENSEMBLE, BASELINES)
DEFAULT_ENSEMBLE_MEMBERS: tuple[str, ...] = ("cnn", "resnet", "vit")
STEP_ENSEMBLE = "ensemble"
ENSEMBLE_FORMAT = 1
PARITY_IMAGES = 1000
THROUGHPUT_BATCH = 256
RESULT_FILES = ("benchmarks.json", "benchmarks.md", "images/benchmarks.png")


class BenchmarkError(FmnistError):
    """A leaderboard row cannot be produced as asked."""


class LeaderboardRow(BaseModel):
    """One model on the leaderboard (``None`` where a measure does not apply)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str
    kind: str
    """``neural``, ``ensemble`` or ``classical``."""
    architecture: str
    params: int | None
    test_accuracy: float
    macro_f1: float
    ece: float | None
    train_seconds: float
    precision: str
    threads: int | None
    n_train: int | None
    epochs: int | None
    onnx_mb: float | None
    latency_ms_b1: float | None
    throughput_b256: float | None
    command: str
    run_id: str
    config_hash: str
    snapshot_id: str
    registered_model: str | None
    version: int | None
    champion: bool
    gates_passed: bool | None
    reused: bool
    measured_at: str
    machine: dict[str, str]
    members: list[dict[str, Any]] | None = None
    notes: str = ""


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


# --------------------------------------------------------------------------- configs
def leaderboard_config(
    name: str, preset: str | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """The training config of leaderboard model ``name``.

    Its own preset comes first; ``preset`` (for example ``tiny``) then sets every training
    field, and its ``model_options`` too when it is written for the same architecture (a
    preset without ``model`` is written for the CNN). ``overrides`` come last.
    """
    if name not in LEADERBOARD_PRESETS:
        raise ConfigError(
            f"{name!r} is not a trained leaderboard model; choose from: {', '.join(NEURAL_MODELS)}"
        )
    values: dict[str, Any] = dict(PRESETS[LEADERBOARD_PRESETS[name]])
    architecture = values.get("model", "cnn")
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        extra = dict(PRESETS[preset])
        same = extra.pop("model", "cnn") == architecture
        options = extra.pop("model_options", None)
        values |= extra
        if same and options is not None:
            values["model_options"] = options
    values |= {k: v for k, v in (overrides or {}).items() if v is not None}
    values["model"] = architecture
    return TrainConfig.model_validate(values)


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


# --------------------------------------------------------------------------- measuring
def onnx_megabytes(path: Path) -> float:
    """Size of an ONNX model in MB (10^6 bytes), external weight data included."""
    total = path.stat().st_size
    data = path.with_name(path.name + ".data")
    if data.is_file():
        total += data.stat().st_size
    return total / 1e6


def measure_onnx(
    path: Path,
    images: npt.NDArray[np.uint8],
    *,
    threads: int = 1,
    latency_runs: int = 500,
    throughput_seconds: float = 3.0,
) -> tuple[float, float]:
    """``(median batch-1 latency in ms, images per second at batch 256)`` with ONNX Runtime.

    Inputs are converted beforehand, so this times the model only; warm-up calls are not
    counted. ``threads`` is ONNX Runtime's intra-op thread count.
    """
    from fmnist.registry.onnx_runtime import PROBABILITIES, OnnxClassifier, to_model_input

    classifier = OnnxClassifier(path, intra_op_threads=threads)
    session, name = classifier.session, classifier.input_name
    singles = [to_model_input(images[i : i + 1]) for i in range(min(64, len(images)))]
    for x in singles[:20]:
        session.run([PROBABILITIES], {name: x})
    timings = []
    for i in range(latency_runs):
        x = singles[i % len(singles)]
        start = time.perf_counter()
        session.run([PROBABILITIES], {name: x})
        timings.append(time.perf_counter() - start)
    latency_ms = statistics.median(timings) * 1000

    reps = -(-THROUGHPUT_BATCH // len(images))
    batch = to_model_input(np.concatenate([images] * reps)[:THROUGHPUT_BATCH])
    for _ in range(2):
        session.run([PROBABILITIES], {name: batch})
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < throughput_seconds:
        session.run([PROBABILITIES], {name: batch})
        calls += 1
    throughput = calls * THROUGHPUT_BATCH / (time.perf_counter() - start)
    return latency_ms, throughput


def machine_info() -> dict[str, str]:
    """The machine the leaderboard was measured on."""
    from fmnist.runtime_info import hardware, package_versions
    from fmnist.training.precision import cpu_supports_bf16

    versions = package_versions()
    return hardware() | {
        "bf16": "native" if cpu_supports_bf16() else "emulated",
        "torch": versions.get("torch", "absent"),
        "onnxruntime": versions.get("onnxruntime", "absent"),
        "scikit-learn": versions.get("scikit-learn", "absent"),
    }


# --------------------------------------------------------------------------- MLflow lookups
def find_runs(registry: MlflowRegistry, step: str, config_hash: str, snapshot_id: str) -> list[Any]:
    """Finished runs of ``step`` with this config hash on this snapshot, newest first."""
    runs = registry.client.search_runs(
        [registry.experiment_id()],
        filter_string=(
            f"tags.`fmnist.step` = '{step}' and tags.`fmnist.config_hash` = '{config_hash}' "
            f"and tags.`fmnist.snapshot_id` = '{snapshot_id}' "
            "and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=20,
    )
    return list(runs)


def _version_of_run(registry: MlflowRegistry, run_id: str) -> ModelVersionInfo | None:
    versions = [v for v in registry.list_versions() if v.run_id == run_id]
    return versions[0] if versions else None


def _run_files(settings: Settings, registry: MlflowRegistry, run_id: str) -> Path:
    local = settings.home / "runs" / run_id
    if (local / "model.onnx").is_file() and (local / "weights.pt").is_file():
        return local
    return registry.download_run_artifacts(run_id, "training", local.parent / f"{run_id}-dl")


# --------------------------------------------------------------------------- the runner
class _Leaderboard:
    def __init__(self, settings: Settings, options: BenchmarkOptions) -> None:
        from fmnist.data.snapshot import load_snapshot
        from fmnist.platform.storage import open_storage
        from fmnist.registry.mlflow_registry import MlflowRegistry

        self.settings = settings
        self.options = options
        self.registry = MlflowRegistry(settings)
        self.snapshot: Snapshot = load_snapshot(
            open_storage(settings.resolved_lake_url), options.snapshot_id
        )
        self.sid = self.snapshot.snapshot_id
        self.machine = machine_info()
        self.test_images = self.snapshot.split("test")[0]

    def named(self, name: str) -> MlflowRegistry:
        from fmnist.registry.mlflow_registry import MlflowRegistry

        return MlflowRegistry(with_registered_model(self.settings, name))

    def _reusable(self, step: str, config_hash: str, accept: Callable[[Any], bool]) -> Any:
        if not self.options.reuse:
            return None
        runs = find_runs(self.registry, step, config_hash, self.sid)
        return next((r for r in runs if accept(r)), None)

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

        named = self.named(name)
        version = _version_of_run(named, run_id)
        metrics = self.registry.client.get_run(run_id).data.metrics
        ece: float | None
        if version is None or "test_accuracy" not in metrics:
            outcome = evaluate_and_register(
                with_registered_model(self.settings, name),
                run_id,
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
        onnx = _run_files(self.settings, self.registry, run_id) / "model.onnx"
        bench = self.settings.benchmark
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

        def complete(run: Any) -> bool:
            stopped = run.data.params.get("stopped")
            return stopped != "time_budget" or config.max_minutes is not None

        found = self._reusable("train", digest, complete)
        if found is not None:
            run_id = str(found.info.run_id)
        else:
            run_id = train_and_log(
                self.settings,
                config,
                snapshot_id=self.sid,
                show_progress=self.options.show_progress,
            ).run_id
        data = self.registry.client.get_run(run_id).data
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
                "params": int(data.params["parameters"]),
                "train_seconds": round(data.metrics["train_seconds"], 1),
                "precision": data.params.get("precision_used", "?"),
                "threads": int(data.params["threads_used"]),
                "n_train": n_train,
                "epochs": config.epochs,
                "config_hash": digest,
                "notes": _stopped_note(data.params.get("stopped", "completed")),
            },
        )

    def ensemble(
        self, members: Sequence[str], rows: Mapping[str, LeaderboardRow]
    ) -> LeaderboardRow:
        """Soft-vote the registered ``members`` and register the result as ``ensemble``."""
        loaded = [self._member(name, rows.get(name)) for name in members]
        identity = {
            "format": ENSEMBLE_FORMAT,
            "members": [(m.name, m.version.run_id) for m in loaded],
            "weights": "validation-em",
            "tta": "chosen on validation",
        }
        digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]
        found = self._reusable(STEP_ENSEMBLE, digest, lambda run: True)
        run_id = (
            str(found.info.run_id) if found is not None else self._build_ensemble(loaded, digest)
        )
        data = self.registry.client.get_run(run_id).data
        member_rows = json.loads(data.params["members"])
        return self._register_and_measure(
            ENSEMBLE,
            run_id,
            reused=found is not None,
            base={
                "kind": "ensemble",
                "architecture": "+".join(m.name for m in loaded),
                "params": int(data.params["parameters"]),
                "train_seconds": round(data.metrics["train_seconds"], 1),
                "precision": data.params["precision_used"],
                "threads": None,
                "n_train": None,
                "epochs": None,
                "config_hash": digest,
                "members": member_rows,
            },
        )

    def _member(self, name: str, row: LeaderboardRow | None) -> _Member:
        import torch

        from fmnist.models import build_model
        from fmnist.registry.mlflow_registry import CHAMPION, RegistryError

        named = self.named(name)
        if row is not None and row.version is not None:
            version = named.get(str(row.version))
        else:
            try:
                version = named.get(CHAMPION)
            except RegistryError:
                versions = named.list_versions()
                if not versions:
                    raise BenchmarkError(
                        f"ensemble member {name!r} is not registered; run "
                        f"'fmnist benchmark --models {name}' first"
                    ) from None
                version = versions[0]
        with tempfile.TemporaryDirectory() as tmp:
            folder = named.download(str(version.version), Path(tmp))
            state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=False)
        config = TrainConfig.model_validate(state["config"])
        model = build_model(config.model, **config.model_options)
        model.load_state_dict(state["state_dict"])
        run_data = self.registry.client.get_run(str(version.run_id)).data
        return _Member(
            name=name,
            version=version,
            model=model.eval(),
            temperature=float(state["temperature"]),
            train_seconds=float(run_data.metrics.get("train_seconds", 0.0)),
            precision=run_data.params.get("precision_used", "?"),
            config=config.model_dump(mode="json"),
        )

    def _build_ensemble(self, members: Sequence[_Member], digest: str) -> str:
        """Assemble, calibrate and export the ensemble in a new MLflow run; returns its id."""
        import torch

        from fmnist.evaluation.calibration import energy_threshold, fit_temperature
        from fmnist.models import build_ensemble, count_parameters, mixture_weights
        from fmnist.registry.onnx_export import export_onnx_checked
        from fmnist.registry.runs import client_run
        from fmnist.runtime_info import git_commit
        from fmnist.training.run import META_OOD_ENERGY_THRESHOLD, META_OOD_QUANTILE, OOD_QUANTILE
        from fmnist.training.trainer import predict_logits

        start = time.perf_counter()
        val_images, val_labels = self.snapshot.split("val")
        temperatures = [m.temperature for m in members]
        mirrored = np.ascontiguousarray(val_images[:, :, ::-1])
        plain = np.stack(
            [_log_softmax(predict_logits(m.model, val_images) / m.temperature) for m in members]
        )
        flipped = np.stack(
            [_log_softmax(predict_logits(m.model, mirrored) / m.temperature) for m in members]
        )
        # Weights by maximum validation likelihood, with and without flip TTA; keep the better.
        weights, val_nll = mixture_weights(plain, val_labels)
        weights_tta, val_nll_tta = mixture_weights(
            np.logaddexp(plain, flipped) - np.log(2.0), val_labels
        )
        tta = val_nll_tta < val_nll
        if tta:
            weights = weights_tta
        ensemble = build_ensemble(
            [m.model for m in members], weights, tta=tta, temperatures=temperatures
        )
        ensemble_logits = predict_logits(ensemble, val_images)
        temperature = fit_temperature(ensemble_logits, val_labels)
        threshold = energy_threshold(ensemble_logits, temperature, OOD_QUANTILE)
        member_rows = [
            {
                "model": m.name,
                "version": m.version.version,
                "run_id": m.version.run_id,
                "weight": round(float(w), 6),
                "temperature": round(m.temperature, 6),
            }
            for m, w in zip(members, weights, strict=True)
        ]
        tags = {
            "fmnist.step": STEP_ENSEMBLE,
            "fmnist.snapshot_id": self.sid,
            "fmnist.config_hash": digest,
            "fmnist.members": ",".join(m.name for m in members),
            "mlflow.source.git.commit": git_commit(),
        }
        with client_run(self.registry, f"ensemble-{digest}", tags) as run_id:
            folder = self.settings.home / "runs" / run_id
            parity = export_onnx_checked(
                ensemble,
                folder / "model.onnx",
                self.snapshot.split("test")[0][:PARITY_IMAGES],
                temperature=temperature,
                metadata={
                    META_OOD_ENERGY_THRESHOLD: f"{threshold:.6g}",
                    META_OOD_QUANTILE: str(OOD_QUANTILE),
                    "run_id": run_id,
                    "snapshot_id": self.sid,
                },
            )
            buffer = io.BytesIO()
            # Each member's training config travels too, so the weights alone rebuild it.
            members_with_config = [
                row | {"config": m.config} for row, m in zip(member_rows, members, strict=True)
            ]
            config = {"model": ENSEMBLE, "members": members_with_config, "tta": tta}
            torch.save(
                {
                    "config": config,
                    "state_dict": ensemble.state_dict(),
                    "temperature": temperature,
                    "snapshot_id": self.sid,
                },
                buffer,
            )
            atomic_write_bytes(folder / "weights.pt", buffer.getvalue())
            precisions = sorted({m.precision for m in members})
            self.registry.log_params(
                run_id,
                {
                    "members": json.dumps(member_rows),
                    "tta": tta,
                    "weights": "validation-em",
                    "parameters": count_parameters(ensemble),
                    "precision_used": "+".join(precisions),
                    "config_hash": digest,
                    "snapshot_id": self.sid,
                },
            )
            self.registry.log_metrics(
                run_id,
                {
                    "train_seconds": sum(m.train_seconds for m in members),
                    "assembly_seconds": time.perf_counter() - start,
                    "temperature": temperature,
                    "val_nll_mixture": val_nll,
                    "val_nll_mixture_tta": val_nll_tta,
                    "ood_energy_threshold": threshold,
                    "onnx_parity_max_prob_diff": parity.max_abs_prob_diff,
                    "onnx_parity_argmax_agreement": parity.argmax_agreement,
                },
            )
            for name in ("weights.pt", "model.onnx"):
                self.registry.log_artifact(run_id, folder / name, "training")
        return run_id

    def classical(self) -> list[LeaderboardRow]:
        """The classical baselines as rows (not registered: no ONNX)."""
        from fmnist.training.baselines import run_baselines

        results = run_baselines(
            self.settings,
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


@dataclass
class _Member:
    name: str
    version: ModelVersionInfo
    model: nn.Module
    temperature: float
    train_seconds: float
    precision: str
    config: dict[str, Any]


def _log_softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    result: npt.NDArray[np.float64] = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return result


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
    settings: Settings,
    options: BenchmarkOptions,
    on_row: Callable[[LeaderboardRow], None] | None = None,
) -> BenchmarkResult:
    """Produce the rows of ``options.models`` and write the JSON, Markdown and PNG files."""
    names = parse_models(options.models)
    board = _Leaderboard(settings, options)
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


# --------------------------------------------------------------------------- outputs
def read_rows(path: Path) -> list[LeaderboardRow]:
    """Rows of an existing ``benchmarks.json`` (none if absent or of another format)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [LeaderboardRow.model_validate(r) for r in data]
    except (OSError, ValueError, TypeError):
        return []


def merge_rows(
    previous: Sequence[LeaderboardRow], new: Sequence[LeaderboardRow]
) -> list[LeaderboardRow]:
    """``new`` rows replace previous rows of the same model; sorted by test accuracy."""
    fresh = {r.model for r in new}
    kept = [r for r in previous if r.model not in fresh]
    return sorted([*kept, *new], key=lambda r: (-r.test_accuracy, r.model))


def _points(gap: float) -> str:
    return f"{abs(gap):.1f} points {'above' if gap >= 0 else 'below'}"


def _fmt(value: float | int | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


TARGETS: tuple[tuple[str, str, float], ...] = (
    ("best single model", "single", 0.945),
    ("ensemble", "ensemble", 0.955),
    ("vit", "vit", 0.92),
)
"""(what, which rows, minimum test accuracy): the model-zoo targets of the product issue."""


def _target_rows(rows: Sequence[LeaderboardRow], which: str) -> list[LeaderboardRow]:
    if which == "single":
        return [r for r in rows if r.kind != "ensemble"]
    return [r for r in rows if r.model == which]


def render_targets(rows: Sequence[LeaderboardRow]) -> list[str]:
    """Markdown lines: each target of :data:`TARGETS` against the best row that it concerns."""
    lines = ["| target | minimum | best measured | met |", "|---|---|---|---|"]
    for what, which, minimum in TARGETS:
        candidates = _target_rows(rows, which)
        if not candidates:
            lines.append(f"| {what} | {minimum:.1%} | not measured | – |")
            continue
        best = max(candidates, key=lambda r: r.test_accuracy)
        met = (
            "yes"
            if best.test_accuracy >= minimum
            else (f"no ({(minimum - best.test_accuracy) * 100:.2f} points short)")
        )
        lines.append(
            f"| {what} | {minimum:.1%} | {best.model} {best.test_accuracy:.2%} "
            f"({best.train_seconds:,.0f} s) | {met} |"
        )
    return lines


def render_markdown(rows: Sequence[LeaderboardRow]) -> str:
    """The leaderboard page: table, classical comparison, commands, chart."""
    from fmnist.training.baselines import (
        PUBLISHED_BEST_CLASSICAL,
        PUBLISHED_BEST_CLASSICAL_ACCURACY,
    )

    machine = rows[0].machine if rows else {}
    snapshots = sorted({r.snapshot_id for r in rows})
    lines = [
        "# Leaderboard",
        "",
        "Generated by `fmnist benchmark`; do not edit by hand. Every neural row is registered",
        "under its model name, so `fmnist serve` answers `POST /v1/predict?model=NAME` with it.",
        "",
        f"- Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} logical cores, "
        f"bf16 {machine.get('bf16', '?')}; torch {machine.get('torch', '?')}, "
        f"ONNX Runtime {machine.get('onnxruntime', '?')}, "
        f"scikit-learn {machine.get('scikit-learn', '?')}.",
        f"- Snapshot: {', '.join(snapshots) or '–'}; test metrics on its test split (the "
        "official test images); ECE after temperature scaling.",
        "- Train time is wall time on this machine with the precision shown. Latency is the "
        "median of batch-1 calls, throughput is images/s at batch 256, both ONNX Runtime FP32 "
        "on 1 thread.",
        "",
        "| # | model | params | precision | train time (s) | test accuracy | macro F1 | ECE "
        "| ONNX MB | latency b1 (ms) | throughput b256 (img/s) | registered |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        registered = (
            f"{r.registered_model} v{r.version}" + (" (champion)" if r.champion else "")
            if r.registered_model
            else "no (no ONNX)"
        )
        lines.append(
            f"| {i} | {r.model} | {_fmt(r.params, ',')} | {r.precision} "
            f"| {r.train_seconds:,.1f} | {r.test_accuracy:.2%} | {r.macro_f1:.4f} "
            f"| {_fmt(r.ece, '.4f')} | {_fmt(r.onnx_mb, '.2f')} "
            f"| {_fmt(r.latency_ms_b1, '.3f')} | {_fmt(r.throughput_b256, ',.0f')} "
            f"| {registered} |"
        )
    lines += ["", "## Targets", "", *render_targets(rows), ""]
    lines.append(
        "What the unmet targets would cost on this machine, projected from measured FLOPs "
        "(`python benchmarks/bench_compute.py`): see [model-zoo.md](model-zoo.md#what-more-"
        "compute-would-take)."
    )
    classical = [r for r in rows if r.kind == "classical"]
    lines += ["", "## Classical baselines", ""]
    published = f"{PUBLISHED_BEST_CLASSICAL_ACCURACY:.1%}"
    if classical:
        best = max(classical, key=lambda r: r.test_accuracy)
        gap = (best.test_accuracy - PUBLISHED_BEST_CLASSICAL_ACCURACY) * 100
        lines.append(
            f"The best classical model here is **{best.model}** ({best.architecture}) at "
            f"{best.test_accuracy:.2%}, {_points(gap)} the best classical result of the "
            f"published Fashion-MNIST benchmark, {published} with an {PUBLISHED_BEST_CLASSICAL} "
            f"trained on all 60,000 training images; ours was fitted on "
            f"{best.n_train or 0:,} images in {best.train_seconds:,.0f} s"
            + (", limited by the time budget." if "time budget" in best.notes else ".")
        )
        neural = [r for r in rows if r.kind != "classical"]
        if neural:
            top = max(neural, key=lambda r: r.test_accuracy)
            lines.append(
                f"The best neural model ({top.model}, {top.test_accuracy:.2%}) is "
                f"{_points((top.test_accuracy - best.test_accuracy) * 100)} it."
            )
        lines.append(
            "Classical models are tracked in MLflow but not registered for serving: they have "
            "no ONNX export."
        )
    else:
        lines.append(
            f"Not run this time (`--models baselines`). The published benchmark's best "
            f"classical result is {published} ({PUBLISHED_BEST_CLASSICAL})."
        )
    lines += ["", "## How each row was produced", ""]
    for r in rows:
        reused = ", reused" if r.reused else ""
        lines.append(
            f"- **{r.model}**: `{r.command}` (MLflow run `{r.run_id}`, config "
            f"`{r.config_hash}`{reused}, measured {r.measured_at})"
            + (f"; {r.notes}" if r.notes else "")
        )
    lines += ["", "![Test accuracy and training time](images/benchmarks.png)", ""]
    return "\n".join(lines)


def render_chart(rows: Sequence[LeaderboardRow]) -> bytes:
    """A PNG bar chart: test accuracy per model, labelled with the training time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fmnist.training.baselines import PUBLISHED_BEST_CLASSICAL_ACCURACY

    ordered = sorted(rows, key=lambda r: r.test_accuracy)
    colors = {"neural": "#3b6ea5", "ensemble": "#7a4fa0", "classical": "#9a9a9a"}
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(ordered), 3) + 1.2), dpi=120)
    try:
        names = [r.model for r in ordered]
        values = [r.test_accuracy * 100 for r in ordered]
        ax.barh(names, values, color=[colors.get(r.kind, "#555555") for r in ordered])
        low = min([*values, PUBLISHED_BEST_CLASSICAL_ACCURACY * 100]) - 2
        ax.set_xlim(max(low, 0), 100)
        for y, r in enumerate(ordered):
            ax.text(
                r.test_accuracy * 100 + 0.1,
                y,
                f"{r.test_accuracy:.2%} · {r.train_seconds:,.0f} s",
                va="center",
                fontsize=8,
            )
        ax.axvline(
            PUBLISHED_BEST_CLASSICAL_ACCURACY * 100,
            color="#c0392b",
            linestyle="--",
            linewidth=1,
            label="published best classical (SVC, 89.7%)",
        )
        ax.set_xlabel("test accuracy (%) · label: training wall time")
        ax.set_title("Fashion-MNIST leaderboard")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def write_outputs(out: Path, rows: Sequence[LeaderboardRow]) -> dict[str, Path]:
    """Write ``benchmarks.json``, ``benchmarks.md`` and ``images/benchmarks.png`` atomically."""
    paths = {
        "json": out / "benchmarks.json",
        "markdown": out / "benchmarks.md",
        "chart": out / "images" / "benchmarks.png",
    }
    payload = [r.model_dump(mode="json") for r in rows]
    atomic_write_bytes(paths["chart"], render_chart(rows))
    atomic_write_text(paths["markdown"], render_markdown(rows))
    atomic_write_text(paths["json"], json.dumps(payload, indent=2) + "\n")
    return paths
