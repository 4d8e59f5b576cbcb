"""``POST /v1/explain``: why the served model answered what it did, as attribution heatmaps.

The route takes exactly the inputs of ``POST /v1/predict`` (parsed by the same
:func:`~fmnist.serving.inputs.read_inputs`, so inputs and input errors are identical), at most
``explain.max_images`` of them, plus ``method`` (query parameter, JSON member or form field;
``integrated_gradients`` by default) and an optional ``class_id`` to explain instead of the
predicted class. It answers ``{"explanations": [{"class_id", "label", "attributions",
"heatmap_png"}], "method", "params", "seconds", "model_name", "model_version", "request_id"}``.

PyTorch is imported on the first explanation only (``/v1/predict`` stays torch-free). The
PyTorch form of each served version is rebuilt from its ``weights.pt`` once, checked against its
ONNX file, and cached beside the store's models. Explanations run one at a time on their own
thread, never on the event loop, each within its method's time limit (``explain.*_time_limit_s``,
a 504 problem past it). Problems: unknown method 422, too many images 413, torch or an
explainer package missing 501, a version that cannot be explained (no weights) 503.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import numpy.typing as npt
from fastapi import FastAPI, Query, Request
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fmnist import CLASS_NAMES, IMAGE_SIZE
from fmnist.config import Settings
from fmnist.explain.core import (
    DEFAULT_METHOD,
    METHODS,
    ExplainError,
    ExplainOptions,
    ExplainTimeoutError,
    ExplainUnavailableError,
    Explanation,
    Method,
    UnknownMethodError,
    check_method,
)
from fmnist.explain.heatmap import heatmap_png
from fmnist.registry.references import REF_PATTERN
from fmnist.serving.decode_guard import DecodeGuard
from fmnist.serving.inputs import MULTIPART, media_type, read_inputs
from fmnist.serving.model_store import LoadedModel, ModelKey
from fmnist.serving.predictor import describe
from fmnist.serving.problems import ProblemError
from fmnist.serving.schemas import DecimalInteger, problem_responses, request_body

if TYPE_CHECKING:
    from torch import nn

    from fmnist.platform.storage import Storage

logger = logging.getLogger("fmnist.serving")

EXPLAIN_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_GRACE_S = 1.0
"""Extra wait beyond a time limit for an explanation to notice its deadline."""

ChooseModel = Callable[[Request, str | None], Awaitable[LoadedModel]]


class Explained(BaseModel):
    """The explanation of one image."""

    class_id: int = Field(description="the explained class (the predicted one by default)")
    label: str
    attributions: list[list[float]] = Field(
        description=f"{IMAGE_SIZE}x{IMAGE_SIZE} attribution of each pixel (rows of the image)"
    )
    heatmap_png: str = Field(description="base64 PNG: the attributions over the input image")
    request_id: str = Field(description="id of the logged prediction (for POST /v1/feedback)")


class ExplainResponse(BaseModel):
    """Answer of ``POST /v1/explain``."""

    explanations: list[Explained]
    method: str
    params: dict[str, Any] = Field(description="sample counts and settings of the method")
    seconds: float = Field(description="time spent computing the attributions")
    model_name: str
    model_version: int
    request_id: str


def rounded(attributions: npt.NDArray[np.float32], digits: int = 6) -> list[list[float]]:
    """Rows of floats with ``digits`` significant digits relative to the map's largest value."""
    a = np.nan_to_num(attributions.astype(np.float64))
    peak = float(np.abs(a).max()) if a.size else 0.0
    decimals = digits - 1 - int(np.floor(np.log10(peak))) if peak > 0 else 0
    values: list[list[float]] = (np.round(a, max(decimals, 0)) + 0.0).tolist()  # no -0.0
    return values


class ExplainService:
    """PyTorch models of served versions (cached), SHAP backgrounds and the explainer thread."""

    def __init__(self, settings: Settings, lake: Storage) -> None:
        """Nothing is imported or loaded until the first explanation; SHAP's backgrounds come
        from the snapshots in ``lake``."""
        self.settings = settings.explain
        self.options = ExplainOptions.from_settings(settings.explain)
        self.lake = lake
        self.cache_size = settings.serving.model_cache_size
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="fmnist-explain")
        self._models: OrderedDict[ModelKey, nn.Module] = OrderedDict()
        self._backgrounds: dict[str, npt.NDArray[np.uint8]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ blocking (explainer thread)
    def _model(self, loaded: LoadedModel) -> nn.Module:
        with self._lock:
            model = self._models.get(loaded.key)
            if model is not None:
                self._models.move_to_end(loaded.key)
                return model
        try:
            import torch

            from fmnist.explain.model import load_served_model
        except ImportError as exc:
            raise ExplainUnavailableError(
                f"explanations need PyTorch, which is not installed ({exc})"
            ) from exc
        torch.set_num_threads(self.settings.torch_threads)
        started = time.perf_counter()
        model = load_served_model(loaded.path)
        logger.info(
            "explainer model loaded name=%s version=%d seconds=%.2f",
            loaded.name,
            loaded.version,
            time.perf_counter() - started,
        )
        with self._lock:
            self._models[loaded.key] = model
            while len(self._models) > self.cache_size:
                self._models.popitem(last=False)
        return model

    def _background(self, model: nn.Module) -> npt.NDArray[np.uint8] | None:
        """Seeded training images of the snapshot the version was trained on (for SHAP)."""
        info = getattr(model, "info", {})
        snapshot_id = info.get("snapshot_id") if isinstance(info, dict) else None
        if not snapshot_id:
            return None
        with self._lock:
            cached = self._backgrounds.get(snapshot_id)
        if cached is None:
            from fmnist.explain.faithfulness import training_background

            cached = training_background(
                self.lake,
                snapshot_id,
                self.settings.shap_background_size,
                seed=self.settings.seed,
            )
            with self._lock:
                self._backgrounds[snapshot_id] = cached
        return cached

    def prepare(self, loaded: LoadedModel, method: Method) -> tuple[Any, Any]:
        """Import the explainer, load the version's weights and SHAP's background (blocking)."""
        model = self._model(loaded)
        background = self._background(model) if method == "shap" else None
        from fmnist.explain.methods import preload

        preload(method)  # import cost paid here, not within the time limit
        return model, background

    def compute(
        self,
        model: nn.Module,
        pixels: npt.NDArray[np.uint8],
        method: Method,
        targets: npt.NDArray[np.int64] | None,
        background: npt.NDArray[np.uint8] | None,
        deadline: float,
    ) -> Explanation:
        """Run the explainer until ``deadline`` at the latest (blocking)."""
        from fmnist.explain.methods import explain

        return explain(
            model,
            pixels,
            method,
            targets=targets,
            background=background,
            options=self.options.with_deadline(deadline),
        )

    # ------------------------------------------------------------------ async
    async def explain(
        self,
        loaded: LoadedModel,
        pixels: npt.NDArray[np.uint8],
        method: Method,
        targets: npt.NDArray[np.int64] | None,
    ) -> Explanation:
        """Explain ``pixels`` off the event loop within the method's time limit."""
        loop = asyncio.get_running_loop()
        load_limit = self.settings.load_timeout_s
        try:
            model, background = await asyncio.wait_for(
                loop.run_in_executor(self.executor, self.prepare, loaded, method), load_limit
            )
        except TimeoutError:
            raise ExplainTimeoutError(
                f"the explainer for version {loaded.version} was not ready within "
                f"{load_limit:g} s (explain.load_timeout_s); try again shortly"
            ) from None
        limit = self.settings.time_limit_s(method)
        deadline = time.monotonic() + limit
        job = loop.run_in_executor(
            self.executor, self.compute, model, pixels, method, targets, background, deadline
        )
        try:
            return await asyncio.wait_for(job, limit + _GRACE_S)
        except (TimeoutError, ExplainTimeoutError):
            raise ExplainTimeoutError(
                f"the {method} explanation did not finish within its limit of {limit:g} s "
                f"(explain.{method}_time_limit_s); use fewer images or a faster method"
            ) from None

    def close(self) -> None:
        """Stop the explainer thread (a running explanation ends at its deadline)."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._models.clear()


MethodQuery = Annotated[
    str | None,
    Query(
        description=f"explanation method: {', '.join(METHODS)} (default {DEFAULT_METHOD}); "
        "also accepted as a JSON member or form field 'method'",
    ),
]
ClassQuery = Annotated[
    int | None,
    Query(ge=0, le=len(CLASS_NAMES) - 1, description="class to explain; default: the predicted"),
    DecimalInteger,
]
ModelRefQuery = Annotated[
    str | None,
    Query(
        pattern=REF_PATTERN,
        description="version number or alias of the default model, another registered "
        "model's name, or NAME@VERSION_OR_ALIAS; default: the champion",
    ),
]


async def _body_method(request: Request) -> str | None:
    """The ``method`` member of a JSON body or field of a multipart form, if any."""
    kind = media_type(request)
    if kind == MULTIPART:
        form = await request.form()  # parsed and cached by read_inputs
        value = form.get("method")
        return value if isinstance(value, str) else None
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        with contextlib.suppress(ValueError):
            body = json.loads(await request.body())  # cached by read_inputs
            if isinstance(body, dict) and "method" in body:
                value = body["method"]
                return value if isinstance(value, str) else repr(value)
    return None


def _method(query: str | None, body: str | None) -> Method:
    if query is not None and body is not None and query != body:
        raise ProblemError(
            422,
            f"method {query!r} in the query and {body!r} in the body: give one",
            slug="conflicting-method",
        )
    name = query if query is not None else body
    try:
        return check_method(DEFAULT_METHOD if name is None else name)
    except UnknownMethodError as exc:
        where = "query.method" if query is not None else "body.method"
        raise ProblemError(
            422,
            str(exc),
            slug="unknown-method",
            errors=[{"loc": where, "msg": str(exc), "type": "enum"}],
        ) from None


def _json(payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return Response(body, media_type="application/json", headers=headers)


def add_explain_routes(
    app: FastAPI,
    settings: Settings,
    lake: Storage,
    choose_model: ChooseModel,
    guard: DecodeGuard,
) -> None:
    """Add ``POST /v1/explain`` to ``app``; ``choose_model`` resolves ``?model=`` as predict does
    and ``guard`` bounds the decoding of its images.

    The explainer thread is stopped when the app shuts down.
    """
    service = ExplainService(settings, lake)
    min_confidence = settings.serving.min_confidence
    app.state.explainer = service
    registry = app.state.metrics.registry
    outcomes = Counter(
        "fmnist_explanations",
        "Explanation requests by method and outcome (ok, timeout, unavailable, error).",
        ["method", "outcome"],
        registry=registry,
    )
    durations = Histogram(
        "fmnist_explanation_seconds",
        "Time spent computing the attributions of one request, by method.",
        ["method"],
        buckets=EXPLAIN_BUCKETS,
        registry=registry,
    )
    max_images = settings.explain.max_images

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        """The app's own lifespan, then stop the explainer thread."""
        async with inner(app) as state:
            try:
                yield state
            finally:
                service.close()

    app.router.lifespan_context = lifespan

    @app.post(
        "/v1/explain",
        tags=["explain"],
        summary="Explain the prediction of one image (or a few JSON instances)",
        response_model=ExplainResponse,
        responses=problem_responses(400, 403, 404, 413, 415, 422, 501, 503, 504),
        openapi_extra=request_body(batch=False),
    )
    async def explain_route(
        request: Request,
        model: ModelRefQuery = None,
        method: MethodQuery = None,
        class_id: ClassQuery = None,
    ) -> Response:
        """The inputs of ``/v1/predict``; answers an attribution map and heatmap per image."""
        chosen = await choose_model(request, model)
        inputs = await read_inputs(
            request,
            batch=False,
            max_instances=max_images,
            guard=guard,
            return_image=False,
        )
        name = _method(method, await _body_method(request))
        targets = None if class_id is None else np.full(len(inputs.pixels), class_id, np.int64)
        try:
            result = await service.explain(chosen, inputs.pixels, name, targets)
        except ExplainTimeoutError as exc:
            outcomes.labels(name, "timeout").inc()
            raise ProblemError(504, str(exc), slug="explain-timeout") from None
        except ExplainUnavailableError as exc:
            outcomes.labels(name, "unavailable").inc()
            raise ProblemError(501, str(exc), slug="explain-unavailable") from None
        except ExplainError as exc:
            outcomes.labels(name, "error").inc()
            logger.warning("explanation failed: %s", exc)
            raise ProblemError(
                503,
                f"model {chosen.name} version {chosen.version} cannot be explained: {exc}",
                slug="explain-model",
            ) from None
        outcomes.labels(name, "ok").inc()
        durations.labels(name).observe(result.seconds)
        # The explained model's own answer is a served prediction too: log it like /v1/predict.
        logits, probabilities = await run_in_threadpool(chosen.classifier.run, inputs.pixels)
        predictions, _ = describe(chosen, inputs, logits, probabilities, min_confidence)
        app.state.recorder.record(request, inputs, predictions, alias=model, route="/v1/explain")
        explanations = []
        for i, class_index in enumerate(result.class_ids.tolist()):
            png = heatmap_png(inputs.pixels[i], result.attributions[i])
            explanations.append(
                {
                    "class_id": class_index,
                    "label": chosen.class_names[class_index],
                    "attributions": rounded(result.attributions[i]),
                    "heatmap_png": base64.b64encode(png).decode("ascii"),
                    "request_id": predictions[i]["request_id"],
                }
            )
        return _json(
            {
                "explanations": explanations,
                "method": result.method,
                "params": result.params,
                "seconds": round(result.seconds, 4),
                "model_name": chosen.name,
                "model_version": chosen.version,
                "request_id": request.state.request_id,
            },
            headers={"X-Model-Version": str(chosen.version)},
        )
