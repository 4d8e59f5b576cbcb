"""The explainers: integrated gradients and occlusion (Captum), SHAP, LIME.

Every method explains a PyTorch module that maps float32 ``(N, 1, 28, 28)`` pixels in [0, 1]
(``uint8 / 255``, the input of the served ONNX graph) to logits ``(N, classes)`` (a module
returning ``(logits, probabilities)``, like the exported graph, is accepted too), so the maps
line up with the image. What each method attributes:

* ``integrated_gradients``: the target logit, along the straight path from a black image (the
  Fashion-MNIST background) to the input; Gauss-Legendre quadrature with ``ig_steps`` points.
* ``shap``: the target logit, by SHAP's ``GradientExplainer`` (expected gradients) with a
  background of training images; ``shap_samples`` background/interpolation draws per image.
* ``lime``: the target's softmax probability, by ``lime_image`` with ``lime_num_samples``
  perturbed images; superpixels switched off are set to black. The default segmentation is a
  regular grid of 4x4-pixel cells (see :func:`segment`). A superpixel's weight is spread evenly
  over its pixels.
* ``occlusion``: the target logit's drop when a black ``occlusion_window`` square slides over
  the image with ``occlusion_stride``, averaged over the windows covering each pixel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from fmnist import IMAGE_SIZE
from fmnist.explain.core import (
    ExplainOptions,
    ExplainTimeoutError,
    ExplainUnavailableError,
    Explanation,
    Method,
    check_method,
)

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]


class _Logits(nn.Module):
    """``model``'s logits, refusing to start a model call after ``deadline``."""

    def __init__(self, model: nn.Module, deadline: float | None, method: str) -> None:
        super().__init__()
        self.model = model
        self.deadline = deadline
        self.method = method
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise ExplainTimeoutError(
                f"the {self.method} explanation ran past its time limit after "
                f"{self.calls} model calls"
            )
        self.calls += 1
        out = self.model(x)
        logits: Tensor = out[0] if isinstance(out, tuple) else out
        return logits


class _Column(nn.Module):
    """One logit of ``model`` as a ``(N, 1)`` output (SHAP then explains that class only)."""

    def __init__(self, model: nn.Module, column: int) -> None:
        super().__init__()
        self.model = model
        self.column = column

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.model(x)[:, self.column : self.column + 1]
        return out


def _check_images(images: npt.NDArray[Any], what: str = "images") -> UInt8Array:
    a = np.asarray(images)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"{what} must be uint8 (N, {IMAGE_SIZE}, {IMAGE_SIZE}), got {a.dtype} {a.shape}"
        )
    if len(a) == 0:
        raise ValueError(f"{what} is empty")
    return a


def _to_input(images: UInt8Array) -> Tensor:
    return torch.from_numpy(images.astype(np.float32) / np.float32(255.0))[:, None]


def _need(module: str, method: str) -> Any:
    import importlib
    import warnings

    try:
        with warnings.catch_warnings():  # shap's colour maps use deprecated matplotlib calls
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module(module)
    except ImportError as exc:
        raise ExplainUnavailableError(
            f"the {method} explainer needs the {module.split('.')[0]!r} package, which is not "
            f"installed ({exc}); install the 'explain' extra"
        ) from exc


_PACKAGES: dict[str, tuple[str, ...]] = {
    "integrated_gradients": ("captum.attr",),
    "shap": ("shap",),
    "lime": ("lime.lime_image", "skimage.segmentation"),
    "occlusion": ("captum.attr",),
}
"""The packages each method imports (seconds each on first use)."""


def preload(method: str) -> None:
    """Import the packages of ``method`` now (a service does it before starting the clock);
    :class:`~fmnist.explain.ExplainUnavailableError` when one is missing."""
    chosen = check_method(method)
    for module in _PACKAGES[chosen]:
        _need(module, chosen)


# --------------------------------------------------------------------------------- methods
def _integrated_gradients(
    model: _Logits, x: Tensor, targets: Tensor, options: ExplainOptions
) -> tuple[FloatArray, dict[str, Any]]:
    attr_module = _need("captum.attr", "integrated_gradients")
    ig = attr_module.IntegratedGradients(model)
    steps = options.ig_steps
    attributions, delta = ig.attribute(
        x,
        baselines=torch.zeros_like(x),
        target=targets,
        n_steps=steps,
        method="gausslegendre",
        internal_batch_size=max(options.ig_internal_batch, steps),
        return_convergence_delta=True,
    )
    a = attributions.detach().numpy()[:, 0]
    delta_abs = delta.detach().abs().numpy()
    # Completeness: the attributions sum to f(x) - f(black); delta is the quadrature error.
    return a, {"completeness_error_max": float(delta_abs.max())}


def _shap(
    model: _Logits,
    x: Tensor,
    targets: Tensor,
    options: ExplainOptions,
    background: UInt8Array | None,
) -> tuple[FloatArray, dict[str, Any]]:
    shap = _need("shap", "shap")
    if background is None:
        reference = torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE)
        source = "black image"
    else:
        reference = _to_input(_check_images(background, "background"))
        source = f"{len(reference)} images"
    out = np.zeros((len(x), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for target in torch.unique(targets).tolist():
        rows = (targets == target).nonzero().flatten()
        explainer = shap.GradientExplainer(
            _Column(model, int(target)), reference, batch_size=options.shap_samples
        )
        values = explainer.shap_values(x[rows], nsamples=options.shap_samples, rseed=options.seed)
        array = np.asarray(values[0] if isinstance(values, list) else values, dtype=np.float32)
        out[rows.numpy()] = array.reshape(len(rows), IMAGE_SIZE, IMAGE_SIZE)
    return out, {"background": source}


def segment(image: UInt8Array, options: ExplainOptions) -> npt.NDArray[np.int64]:
    """LIME's superpixels of one 28x28 image: labels ``0..K-1`` shaped ``(28, 28)``.

    ``grid`` (default): square cells of ``lime_grid_cell`` pixels (7x7 = 49 cells of 4x4), the
    same equal features for every image, the background included (the empty space between
    trouser legs or around a bag's handle is evidence too), and no need for contrast. ``slic``
    and ``quickshift`` (scikit-image) follow the image's edges: on the default CNN they match
    the grid's deletion AUC and beat its insertion AUC, but their maps change less when the
    model's weights are randomised (docs/explainability.md has the figures).
    """
    if options.lime_segmentation == "grid":
        cell = options.lime_grid_cell
        cols = -(-IMAGE_SIZE // cell)
        idx = np.arange(IMAGE_SIZE) // cell
        return (idx[:, None] * cols + idx[None, :]).astype(np.int64)
    segmentation = _need("skimage.segmentation", "lime")
    grey = image.astype(np.float64) / 255.0
    if options.lime_segmentation == "slic":
        labels = segmentation.slic(
            grey,
            n_segments=options.lime_slic_segments,
            compactness=options.lime_slic_compactness,
            channel_axis=None,
            start_label=0,
        )
    else:
        labels = segmentation.quickshift(
            np.repeat(grey[..., None], 3, axis=-1),
            kernel_size=options.lime_quickshift_kernel,
            max_dist=options.lime_quickshift_max_dist,
            ratio=0.5,
            rng=options.seed,
        )
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(IMAGE_SIZE, IMAGE_SIZE).astype(np.int64)


def _lime_explainer(lime_image: Any, seed: int) -> Any:
    """``LimeImageExplainer`` with a vectorised neighbourhood sampler.

    Same random draws and the same images as lime's own ``data_labels`` (which loops over the
    samples in Python and writes a progress bar to stderr); only faster and silent.
    """

    class _Explainer(lime_image.LimeImageExplainer):  # type: ignore[misc]
        def data_labels(
            self,
            image: npt.NDArray[np.float64],
            fudged_image: npt.NDArray[np.float64],
            segments: npt.NDArray[np.int64],
            classifier_fn: Callable[[npt.NDArray[np.float64]], FloatArray],
            num_samples: int,
            batch_size: int = 10,
        ) -> tuple[npt.NDArray[np.int64], FloatArray]:
            n_features = np.unique(segments).shape[0]
            data = self.random_state.randint(0, 2, num_samples * n_features).reshape(
                (num_samples, n_features)
            )
            data[0, :] = 1
            labels = []
            for start in range(0, num_samples, batch_size):
                kept = data[start : start + batch_size][:, segments].astype(bool)[..., None]
                labels.append(classifier_fn(np.where(kept, image[None], fudged_image[None])))
            return data, np.concatenate(labels)

    return _Explainer(random_state=seed)


def _lime(
    model: _Logits, images: UInt8Array, targets: Tensor, options: ExplainOptions
) -> tuple[FloatArray, dict[str, Any]]:
    lime_image = _need("lime.lime_image", "lime")

    def classify(batch: npt.NDArray[np.float64]) -> FloatArray:
        x = torch.from_numpy(np.ascontiguousarray(batch[..., 0], dtype=np.float32))[:, None]
        with torch.no_grad():
            probabilities = torch.softmax(model(x), dim=-1)
        result: FloatArray = probabilities.numpy()
        return result

    out = np.zeros((len(images), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    fit_scores = []
    segments_count = []
    for i, image in enumerate(images):
        target = int(targets[i])
        segments = segment(image, options)
        explainer = _lime_explainer(lime_image, options.seed)
        rgb = np.repeat((image.astype(np.float64) / 255.0)[..., None], 3, axis=-1)
        n_segments = int(segments.max()) + 1
        result = explainer.explain_instance(
            rgb,
            classify,
            labels=(target,),
            hide_color=0.0,
            top_labels=None,
            num_features=n_segments,
            num_samples=options.lime_num_samples,
            batch_size=options.lime_batch,
            segmentation_fn=lambda _image, s=segments: s,
            random_seed=options.seed,
        )
        sizes = np.bincount(segments.ravel(), minlength=n_segments).astype(np.float32)
        weights = np.zeros(n_segments, dtype=np.float32)
        for feature, weight in result.local_exp[target]:
            weights[feature] = weight
        out[i] = (weights / np.maximum(sizes, 1))[segments]
        fit_scores.append(float(result.score))
        segments_count.append(n_segments)
    return out, {
        "fit_r2_mean": float(np.mean(fit_scores)),
        "segments_mean": float(np.mean(segments_count)),
    }


def _occlusion(
    model: _Logits, x: Tensor, targets: Tensor, options: ExplainOptions
) -> tuple[FloatArray, dict[str, Any]]:
    attr_module = _need("captum.attr", "occlusion")
    window, stride = options.occlusion_window, options.occlusion_stride
    occlusion = attr_module.Occlusion(model)
    attributions = occlusion.attribute(
        x,
        sliding_window_shapes=(1, window, window),
        strides=(1, stride, stride),
        baselines=0.0,
        target=targets,
        perturbations_per_eval=max(1, options.occlusion_batch // len(x)),
    )
    return attributions.detach().numpy()[:, 0], {}


# --------------------------------------------------------------------------------- entry
def explain(
    model: nn.Module,
    images: npt.NDArray[np.uint8],
    method: str = "integrated_gradients",
    *,
    targets: npt.NDArray[np.integer] | None = None,
    background: npt.NDArray[np.uint8] | None = None,
    options: ExplainOptions | None = None,
) -> Explanation:
    """Attribution maps of ``images`` (uint8 ``(N, 28, 28)``) for ``model`` with ``method``.

    ``model`` maps float32 ``(N, 1, 28, 28)`` in [0, 1] to logits (for a registered version:
    :func:`~fmnist.explain.load_served_model`). ``targets`` (``(N,)`` class ids) default to the
    predicted classes. ``background`` (uint8 ``(B, 28, 28)``, training images) is SHAP's
    reference distribution; without it SHAP uses a black image. Raises
    :class:`~fmnist.explain.UnknownMethodError` for an unknown method,
    :class:`~fmnist.explain.ExplainTimeoutError` past ``options.deadline`` and
    :class:`~fmnist.explain.ExplainUnavailableError` when a package is missing.
    """
    chosen: Method = check_method(method)
    options = options or ExplainOptions()
    pixels = _check_images(images)
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        wrapped = _Logits(model, options.deadline, chosen)
        x = _to_input(pixels)
        if targets is None:
            with torch.no_grad():
                class_ids = wrapped(x).argmax(dim=1)
        else:
            class_ids = torch.as_tensor(np.asarray(targets), dtype=torch.int64).reshape(-1)
            if len(class_ids) != len(pixels):
                raise ValueError(f"{len(pixels)} images but {len(class_ids)} targets")
            if len(class_ids) and not 0 <= int(class_ids.min()) <= int(class_ids.max()) < 10:
                raise ValueError(f"targets must be class ids 0-9, got {class_ids.tolist()}")
        with torch.enable_grad():
            if chosen == "integrated_gradients":
                maps, details = _integrated_gradients(wrapped, x, class_ids, options)
            elif chosen == "shap":
                maps, details = _shap(wrapped, x, class_ids, options, background)
            elif chosen == "lime":
                maps, details = _lime(wrapped, pixels, class_ids, options)
            else:
                maps, details = _occlusion(wrapped, x, class_ids, options)
    finally:
        model.train(was_training)
    params = options.method_params(chosen)
    if chosen == "shap":
        params["background"] = details.pop("background")
    details["model_calls"] = wrapped.calls
    return Explanation(
        method=chosen,
        class_ids=class_ids.numpy().astype(np.int64),
        attributions=np.ascontiguousarray(maps, dtype=np.float32),
        seconds=time.perf_counter() - start,
        params=params,
        details=details,
    )
