"""The served model as a PyTorch module, rebuilt from a registered version's ``weights.pt``.

A registered version folder (what :meth:`MlflowRegistry.download` returns and what the serving
store keeps under ``<home>/serving/models/<name>/<version>/``) holds ``model.onnx`` and
``weights.pt``. The weights file carries the training config and the state dict (see
:func:`fmnist.training.run.save_weights`), or, for a soft-voting ensemble written by the
leaderboard, ``{"model": "ensemble", "members": [...], "tta": ...}`` and the ensemble's state dict.

:func:`load_served_model` wraps the rebuilt network in the exported graph,
:class:`~fmnist.registry.onnx_export.InferenceModel` (normalisation inside), so attributions are
with respect to the ``uint8 / 255`` pixels the ONNX model receives, and checks that it
reproduces ``model.onnx`` before anything is explained with it.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from fmnist import IMAGE_SIZE, NUM_CLASSES
from fmnist.explain.core import ExplainError

logger = logging.getLogger("fmnist.explain")

WEIGHTS_FILE = "weights.pt"
ONNX_FILE = "model.onnx"
PARITY_TOLERANCE = 1e-3
"""Largest absolute logit difference accepted between the rebuilt model and ``model.onnx``."""


class ServedModel(nn.Module):
    """The graph that is served, in PyTorch: float32 ``(N, 1, 28, 28)`` in [0, 1] to logits.

    It is the exported :class:`~fmnist.registry.onnx_export.InferenceModel` (training
    normalisation inside) returning its raw ``logits``; :meth:`probabilities` gives the served,
    temperature-scaled probabilities.
    """

    def __init__(
        self, network: nn.Module, temperature: float = 1.0, info: dict[str, Any] | None = None
    ) -> None:
        """Wrap ``network`` (which expects normalised input) as the exported graph does."""
        from fmnist.registry.onnx_export import InferenceModel

        super().__init__()
        self.graph = InferenceModel(network, temperature)
        self.temperature = float(temperature)
        self.info: dict[str, Any] = dict(info or {})
        """Where the weights came from: config, snapshot id, folder."""

    @property
    def network(self) -> nn.Module:
        """The trained network (normalised input)."""
        network: nn.Module = self.graph.model
        return network

    def forward(self, image: Tensor) -> Tensor:
        """Raw logits ``(N, classes)`` of ``raw / 255`` pixels."""
        logits, _ = self.graph(image)
        out: Tensor = logits
        return out

    def probabilities(self, image: Tensor) -> Tensor:
        """The served probabilities ``softmax(logits / temperature)``."""
        _, probabilities = self.graph(image)
        out: Tensor = probabilities
        return out


def _weights_file(folder: Path) -> Path:
    direct = folder / WEIGHTS_FILE
    if direct.is_file():
        return direct
    found = sorted(folder.rglob(WEIGHTS_FILE)) if folder.is_dir() else []
    if not found:
        raise ExplainError(
            f"{folder}: no {WEIGHTS_FILE} in the version folder; explanations need the PyTorch "
            "weights the ONNX model was exported from"
        )
    return found[0]


def _load_state(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ExplainError(
            f"{path}: cannot read the weights ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(state, dict) or "config" not in state or "state_dict" not in state:
        raise ExplainError(f"{path}: not an fmnist weights file (no config or state_dict)")
    return state


def _build_network(config: dict[str, Any], state_dict: dict[str, Tensor], where: str) -> nn.Module:
    from fmnist.models import build_model
    from fmnist.training.config import TrainConfig

    train_config = TrainConfig.model_validate(config)
    network = build_model(train_config.model, **train_config.model_options)
    try:
        network.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise ExplainError(f"{where}: the state dict does not fit its config: {exc}") from exc
    return network


def _member_candidates(name: str) -> list[dict[str, Any]]:
    """Training configs ``fmnist benchmark`` may have used for leaderboard model ``name``."""
    from fmnist.training.config import LEADERBOARD_PRESETS, PRESETS, leaderboard_config

    if name not in LEADERBOARD_PRESETS:
        return []
    configs = [leaderboard_config(name)]
    configs += [leaderboard_config(name, preset) for preset in PRESETS]
    unique: dict[str, dict[str, Any]] = {}
    for config in configs:
        dumped = config.model_dump()
        unique.setdefault(repr((dumped["model"], dumped["model_options"])), dumped)
    return list(unique.values())


def _shapes(state_dict: dict[str, Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def _member_run_config(run_id: str, folder: Path) -> dict[str, Any] | None:
    """The training config in ``<home>/runs/<run_id>/weights.pt`` of an ancestor of ``folder``
    (the leaderboard trains the members in the same home the ensemble is served from)."""
    if not run_id or not run_id.isalnum():
        return None
    for parent in folder.resolve().parents:
        path = parent / "runs" / run_id / WEIGHTS_FILE
        if path.is_file():
            with contextlib.suppress(ExplainError):
                config = _load_state(path)["config"]
                return config if isinstance(config, dict) else None
    return None


def _ensemble_member(
    row: dict[str, Any], index: int, state_dict: dict[str, Tensor], path: Path
) -> nn.Module:
    """Member ``index`` rebuilt from the first candidate config whose tensors fit exactly.

    Candidates, in order: a config stored with the member row, the member run's own weights
    file in the same home, then every training config the leaderboard could have used for that
    model name (presets change over time, hence the shape check and the ONNX parity check).
    """
    prefix = f"members.{index}."
    own = {k.removeprefix(prefix): v for k, v in state_dict.items() if k.startswith(prefix)}
    candidates: list[dict[str, Any]] = []
    for config in (row.get("config"), _member_run_config(str(row.get("run_id", "")), path)):
        if isinstance(config, dict):
            candidates.append(config)
    candidates += _member_candidates(str(row.get("model")))
    for candidate in candidates:
        from fmnist.models import build_model

        try:
            network = build_model(candidate["model"], **candidate.get("model_options", {}))
        except Exception:  # noqa: S112 - a candidate that cannot be built is not the one
            continue
        if _shapes(network.state_dict()) == _shapes(own):
            network.load_state_dict(own)
            return network
    raise ExplainError(
        f"{path}: cannot rebuild ensemble member {index} ({row.get('model')!r}, run "
        f"{row.get('run_id')}): its run's weights are not in this home and no current training "
        "config of that model matches its weights"
    )


def _build_ensemble(config: dict[str, Any], state_dict: dict[str, Tensor], path: Path) -> nn.Module:
    from fmnist.models import build_ensemble

    rows = config.get("members")
    if not isinstance(rows, list) or not rows:
        raise ExplainError(f"{path}: ensemble weights without members")
    members = [_ensemble_member(row, i, state_dict, path) for i, row in enumerate(rows)]
    ensemble = build_ensemble(
        members,
        [float(row.get("weight", 1.0)) for row in rows],
        tta=bool(config.get("tta", False)),
        temperatures=[float(row.get("temperature", 1.0)) for row in rows],
    )
    ensemble.load_state_dict(state_dict)
    return ensemble


def _check_parity(model: ServedModel, onnx_path: Path, seed: int = 0) -> float:
    """Largest absolute logit difference to the ONNX file on black, white and random images."""
    from fmnist.registry.onnx_runtime import OnnxClassifier, to_model_input

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (6, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    images[0], images[1] = 0, 255
    x = to_model_input(images)
    onnx_logits = OnnxClassifier(onnx_path, intra_op_threads=1).run(x)[0]
    with torch.inference_mode():
        torch_logits = model(torch.from_numpy(x)).numpy()
    return float(np.abs(onnx_logits.astype(np.float64) - torch_logits).max())


def load_served_model(folder: Path, *, verify: bool = True) -> ServedModel:
    """The registered version in ``folder`` as a PyTorch :class:`ServedModel` (eval mode, CPU).

    ``folder`` is a downloaded version folder holding ``weights.pt`` (searched recursively) and,
    usually, ``model.onnx``. Single networks are rebuilt from the training config in the weights
    file; ensembles from their members' weights, each member's architecture read from its run's
    ``weights.pt`` in the same home (``<home>/runs/<run_id>``) or else found among the
    leaderboard's current training configs by matching tensor shapes. With ``verify`` (default) the
    rebuilt model must reproduce ``model.onnx`` (logits within :data:`PARITY_TOLERANCE`), so
    what is explained is what is served. Raises :class:`~fmnist.explain.ExplainError`.
    """
    folder = Path(folder)
    path = _weights_file(folder)
    state = _load_state(path)
    config = state["config"]
    if not isinstance(config, dict):
        raise ExplainError(f"{path}: the config is not a mapping")
    state_dict = state["state_dict"]
    if config.get("model") == "ensemble":
        network = _build_ensemble(config, state_dict, path)
    else:
        network = _build_network(config, state_dict, str(path))
    info = {
        "config": config,
        "snapshot_id": state.get("snapshot_id"),
        "weights": str(path),
    }
    model = ServedModel(network, float(state.get("temperature", 1.0)), info)
    model = model.to(device="cpu", dtype=torch.float32).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    with torch.inference_mode():
        out = model(torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE))
    if tuple(out.shape) != (1, NUM_CLASSES):
        raise ExplainError(f"{path}: the model returns {tuple(out.shape)} for one image")
    onnx_path = path.parent / ONNX_FILE
    if not onnx_path.is_file():
        found = sorted(folder.rglob(ONNX_FILE)) if folder.is_dir() else []
        onnx_path = found[0] if found else onnx_path
    if verify and onnx_path.is_file():
        diff = _check_parity(model, onnx_path)
        model.info["onnx_max_logit_diff"] = diff
        if not diff <= PARITY_TOLERANCE:
            raise ExplainError(
                f"{path}: the PyTorch weights do not reproduce {onnx_path.name} (max logit "
                f"difference {diff:.3g} > {PARITY_TOLERANCE:g}); refusing to explain a "
                "different model than the one served"
            )
    return model


def predicted_classes(model: nn.Module, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """The class each image is predicted as (argmax of the model's logits)."""
    from fmnist.registry.onnx_runtime import to_model_input

    with torch.inference_mode():
        out = model(torch.from_numpy(to_model_input(images)))
    logits = out[0] if isinstance(out, tuple) else out
    classes: npt.NDArray[np.int64] = logits.argmax(dim=1).numpy().astype(np.int64)
    return classes
