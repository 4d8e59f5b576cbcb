"""Method names, options, the result type and the errors of :mod:`fmnist.explain` (no torch).

Importing this module is cheap (numpy only), so the serving app can validate a method name and
shape its answer without loading PyTorch; the explainers themselves live in
:mod:`fmnist.explain.methods`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from fmnist.errors import FmnistError

if TYPE_CHECKING:
    from fmnist.config import ExplainSettings

Method = Literal["integrated_gradients", "shap", "lime", "occlusion"]
"""The name of an explanation method (the public contract of the API and the CLI)."""
METHODS: tuple[Method, ...] = ("integrated_gradients", "shap", "lime", "occlusion")
"""Every method, the default first."""
DEFAULT_METHOD: Method = "integrated_gradients"
"""The method used when none is named (the only one fast enough for every request)."""
Segmentation = Literal["grid", "slic", "quickshift"]
"""How LIME cuts a 28x28 image into superpixels."""


class ExplainError(FmnistError):
    """An explanation cannot be computed as asked."""


class UnknownMethodError(ExplainError):
    """The method name is not one of :data:`METHODS`."""

    def __init__(self, method: object) -> None:
        """Name the bad method and the valid ones."""
        super().__init__(
            f"unknown explanation method {method!r}; choose one of: {', '.join(METHODS)}"
        )
        self.method = method


class ExplainTimeoutError(ExplainError):
    """The explanation ran past its time limit and was abandoned."""

    exit_code = 1


class ExplainUnavailableError(ExplainError):
    """A package the method needs (torch, captum, shap, lime, scikit-image) is not installed."""


def check_method(method: object) -> Method:
    """``method`` if it names a method, else :class:`UnknownMethodError`."""
    for known in METHODS:
        if method == known:
            return known
    raise UnknownMethodError(method)


@dataclass(frozen=True)
class ExplainOptions:
    """Sample counts and limits of the explainers (defaults: the ``explain`` settings).

    ``deadline`` is a :func:`time.monotonic` instant: the model call that starts after it raises
    :class:`ExplainTimeoutError`, so an explanation stops at the next batch of model calls.
    """

    ig_steps: int = 32
    """Integrated gradients: points of the Gauss-Legendre path integral."""
    ig_internal_batch: int = 256
    """Integrated gradients: path points evaluated per model call."""
    shap_samples: int = 64
    """SHAP (expected gradients): background/interpolation samples per image."""
    shap_background_size: int = 64
    """SHAP: training images drawn as the background (by the caller, see ``background``)."""
    lime_num_samples: int = 500
    """LIME: perturbed images per explained image."""
    lime_segmentation: Segmentation = "grid"
    """LIME: superpixels; ``grid`` cuts square cells of ``lime_grid_cell`` pixels."""
    lime_grid_cell: int = 4
    lime_slic_segments: int = 49
    lime_slic_compactness: float = 0.1
    lime_quickshift_kernel: float = 1.0
    lime_quickshift_max_dist: float = 4.0
    lime_batch: int = 500
    """LIME: perturbed images per model call."""
    occlusion_window: int = 4
    """Occlusion: side of the square patch set to black."""
    occlusion_stride: int = 2
    occlusion_batch: int = 256
    """Occlusion: perturbed images per model call."""
    seed: int = 0
    deadline: float | None = None

    def __post_init__(self) -> None:
        """Reject values no explainer can use."""
        positive = {
            "ig_steps": self.ig_steps,
            "ig_internal_batch": self.ig_internal_batch,
            "shap_samples": self.shap_samples,
            "shap_background_size": self.shap_background_size,
            "lime_num_samples": self.lime_num_samples,
            "lime_grid_cell": self.lime_grid_cell,
            "lime_slic_segments": self.lime_slic_segments,
            "lime_batch": self.lime_batch,
            "occlusion_window": self.occlusion_window,
            "occlusion_stride": self.occlusion_stride,
            "occlusion_batch": self.occlusion_batch,
        }
        bad = [f"{k}={v}" for k, v in positive.items() if v < 1]
        if bad:
            raise ValueError(f"explain options must be positive: {', '.join(bad)}")
        if self.lime_segmentation not in ("grid", "slic", "quickshift"):
            raise ValueError(f"unknown LIME segmentation {self.lime_segmentation!r}")

    @classmethod
    def from_settings(cls, settings: ExplainSettings, **overrides: Any) -> ExplainOptions:
        """The options of the ``explain`` settings section, with ``overrides`` applied."""
        values = {
            f.name: getattr(settings, f.name)
            for f in dataclasses.fields(cls)
            if hasattr(settings, f.name)
        }
        return cls(**(values | overrides))

    def with_deadline(self, deadline: float | None) -> ExplainOptions:
        """A copy with another :attr:`deadline`."""
        return dataclasses.replace(self, deadline=deadline)

    def method_params(self, method: Method) -> dict[str, Any]:
        """The options that shape ``method``'s result (recorded with each explanation)."""
        prefix = {
            "integrated_gradients": "ig_",
            "shap": "shap_",
            "lime": "lime_",
            "occlusion": "occlusion_",
        }[method]
        params: dict[str, Any] = {
            f.name.removeprefix(prefix): getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name.startswith(prefix) and not f.name.endswith("batch")
        }
        if method == "lime":
            kept = {"grid": "grid_cell", "slic": "slic_", "quickshift": "quickshift_"}
            chosen = kept[self.lime_segmentation]
            params = {
                k: v
                for k, v in params.items()
                if not k.startswith(("grid_cell", "slic_", "quickshift_")) or k.startswith(chosen)
            }
        if method in ("shap", "lime"):
            params["seed"] = self.seed
        return params


@dataclass(frozen=True, eq=False)
class Explanation:
    """Attribution maps of ``N`` images for one method.

    ``attributions[i]`` is the attribution of each pixel of image ``i`` (with respect to the
    ``uint8 / 255`` input of the served graph) to the model's output for class ``class_ids[i]``:
    positive pixels push the model towards that class, negative ones away from it.
    """

    method: Method
    class_ids: npt.NDArray[np.int64]
    """``(N,)`` the explained class of each image (the predicted one unless targets were given)."""
    attributions: npt.NDArray[np.float32]
    """``(N, 28, 28)`` float32."""
    seconds: float
    """Wall time of the explanation (model calls included)."""
    params: dict[str, Any]
    """The sample counts and settings the method ran with."""
    details: dict[str, Any] = field(default_factory=dict)
    """Diagnostics, e.g. the integrated-gradients completeness error."""

    def __len__(self) -> int:
        """Number of explained images."""
        return len(self.class_ids)
