"""The online inference service: a FastAPI app over the model store.

Routes (every error is RFC 9457 problem details, see :mod:`fmnist.serving.problems`):

* ``POST /v1/predict``: one image (multipart field ``file``, or a raw ``image/*`` body) or JSON
  ``{"instances": [...]}``; ``?model=`` picks another model, ``?return_image=true`` adds the
  28x28 PNG the model saw;
* ``POST /v1/predict/batch``: many JSON instances or many files (``file`` / ``files``), at most
  ``serving.max_batch``;
* ``GET /v1/models``, ``POST /v1/admin/reload`` (bearer token), ``GET /v1/samples``;
* ``GET /v1/models/{name}/{version}/card``: a version's model card, HTML or ``?format=md``
  (:mod:`fmnist.serving.card_routes`);
* ``POST /v1/explain``: attribution heatmaps for the inputs of ``/v1/predict``
  (:mod:`fmnist.serving.explain_routes`);
* ``GET /healthz``, ``GET /readyz``, ``GET /metrics``, ``/openapi.json``, ``/docs``;
* the web UI (``fmnist/serving/ui``) at ``/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.types import Scope

from fmnist import __version__
from fmnist.audit import AuditLog, audit_path
from fmnist.errors import FmnistError, SnapshotNotFoundError
from fmnist.monitoring.client_ids import client_id_hasher
from fmnist.platform.services import Services
from fmnist.registry.references import REF_PATTERN
from fmnist.rollout.assignment import CHALLENGER, SHADOW_SUFFIX
from fmnist.rollout.state import state_path
from fmnist.security.keys import KeyStore, key_store_path
from fmnist.serving.card_routes import add_card_routes
from fmnist.serving.decode_guard import DecodeGuard
from fmnist.serving.explain_routes import add_explain_routes
from fmnist.serving.feedback_routes import add_feedback_routes
from fmnist.serving.inputs import ModelInputs, read_inputs
from fmnist.serving.log_failures import LogFailureHandler
from fmnist.serving.metrics import ServingMetrics
from fmnist.serving.middleware import RequestContextMiddleware
from fmnist.serving.model_store import (
    LoadedModel,
    ModelNotFoundError,
    ModelStore,
    ReloadError,
    ReloadResult,
)
from fmnist.serving.monitoring_routes import add_monitoring_routes
from fmnist.serving.predictor import Predictor
from fmnist.serving.problems import ProblemError, install_problem_handlers
from fmnist.serving.recording import PredictionRecorder
from fmnist.serving.rollout import Rollout, add_rollout_routes
from fmnist.serving.routing import PhotoRouter
from fmnist.serving.samples import SampleSource
from fmnist.serving.schemas import (
    DecimalInteger,
    ModelsResponse,
    PredictResponse,
    ReloadResponse,
    SamplesResponse,
    Status,
    layer_problems,
    problem_media_types,
    problem_responses,
    request_body,
)
from fmnist.serving.security import SecurityMiddleware, route_scope

logger = logging.getLogger("fmnist.serving")

UI_DIR = Path(__file__).resolve().parent / "ui"
SETTINGS_ENV = "FMNIST_SERVE_SETTINGS_JSON"
"""Environment variable carrying the effective settings to worker processes."""
API_PATHS = ("/v1/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc")

ModelQuery = Annotated[
    str | None,
    Query(
        pattern=REF_PATTERN,
        description="version number or alias of the default model, another registered "
        "model's name, or NAME@VERSION_OR_ALIAS; default: the champion",
    ),
]
ReturnImageQuery = Annotated[
    bool, Query(description="add the base64 28x28 PNG the model saw to each prediction")
]

AdminCredentials = Annotated[
    HTTPAuthorizationCredentials | None,
    Depends(HTTPBearer(auto_error=False, description="serving.admin_token")),
]


class _UiMount(Mount):
    """The UI at ``/``, never shadowing API paths (so they keep their 404/405 answers)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """No match for API paths; otherwise as a mount."""
        if scope.get("path", "").startswith(API_PATHS):
            return Match.NONE, {}
        return super().matches(scope)


def _json(
    payload: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    background: BackgroundTask | None = None,
) -> Response:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers=headers,
        background=background,
    )


def get_openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's OpenAPI document of ``app``."""
    return get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )


def create_app(services: Services, store: ModelStore | None = None) -> FastAPI:
    """The serving app over ``services``; ``store`` defaults to a new :class:`ModelStore` on
    the services' registries, loaded at start-up."""
    settings = services.settings
    serving = settings.serving
    Image.init()  # register every image plugin now, not lazily during the first requests
    store = store or ModelStore(settings, services.registries)
    metrics = ServingMetrics()
    executor = ThreadPoolExecutor(serving.inference_threads, thread_name_prefix="fmnist-infer")
    predictor = Predictor(serving, metrics, executor)
    router = PhotoRouter(store, serving.photo_model, serving.reload_interval_s)
    samples = SampleSource(services.storage)
    log = services.prediction_log if settings.monitoring.log_enabled else None
    feedback = services.feedback if log is not None else None
    recorder = PredictionRecorder(
        log,
        default_alias=store.default_ref,
        client_ids=client_id_hasher(settings) if log is not None else None,
        move_interval_s=settings.monitoring.journal_move_interval_s,
        on_failure=LogFailureHandler(settings.monitoring.log_failure, metrics),
    )
    rollout = Rollout(
        settings.rollout,
        store,
        AuditLog(audit_path(settings.home, settings.rollout.audit_path)),
        state_path(settings.home),
    )
    max_batch = serving.max_batch
    guard = DecodeGuard.from_settings(serving)
    default_ref = store.default_ref

    async def reload() -> ReloadResult:
        """Check the registry now; count the outcome in the metrics (a failed reload keeps
        the model served: ``error``, or ``refused`` for a file that failed its checksum)."""
        try:
            result = await run_in_threadpool(store.refresh)
        except Exception as exc:
            refused = isinstance(exc, ReloadError) and exc.refused
            metrics.reloads.labels("refused" if refused else "error").inc()
            raise
        metrics.reloads.labels("changed" if result.changed else "unchanged").inc()
        if result.changed:
            metrics.set_model(*result.current)
        await run_in_threadpool(rollout.refresh)  # a change another worker made
        return result

    async def poll_registry(interval: float) -> None:
        """Check the registry every ``interval`` seconds, forever."""
        while True:
            await asyncio.sleep(interval)
            try:
                await reload()
            except Exception as exc:  # the registry may be down: keep serving, retry later
                logger.warning("registry check failed: %s", exc)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Load the default model, start the poller; stop both at shutdown."""
        if store.default is None:
            try:
                await run_in_threadpool(store.load_default)
            except FmnistError as exc:
                logger.error("not ready: %s", exc)
            except Exception:
                logger.exception("not ready: the default model could not be loaded")
        if store.default is not None:
            metrics.set_model(store.default.name, store.default.version)
            try:  # the photo model is optional: photos fall back to the default without it
                await run_in_threadpool(router.load)
            except Exception as exc:
                logger.warning("photo model %r not loaded: %s", serving.photo_model, exc)
        if store.default is not None:
            await run_in_threadpool(rollout.start)
        if serving.gc_freeze:
            # Hundreds of thousands of long-lived objects (MLflow, pandas, ...) would otherwise
            # be traversed by every full collection: 50-150 ms pauses under load.
            gc.collect()
            gc.freeze()
        poller = None
        if serving.reload_interval_s > 0:
            poller = asyncio.create_task(poll_registry(serving.reload_interval_s))
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            await predictor.close()
            recorder.close()
            executor.shutdown(wait=False)

    app = FastAPI(
        title="fmnist",
        version=__version__,
        summary="Fashion-MNIST garment classification.",
        description="Classify garment images (Fashion-MNIST classes) with the registered "
        "champion model. Errors are RFC 9457 problem details.",
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.metrics = metrics
    app.state.predictor = predictor
    app.state.photo_router = router
    app.state.prediction_log = log
    app.state.feedback = feedback
    app.state.recorder = recorder
    app.state.rollout = rollout
    install_problem_handlers(app)
    security = settings.security
    app.add_middleware(
        SecurityMiddleware,
        security=security,
        serving=serving,
        keys=KeyStore(key_store_path(settings.home, security.keys_path)),
    )
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=serving.max_body_bytes,
        access_log=serving.access_log,
    )
    if security.cors_origins:  # outermost: preflights are answered before authentication
        app.add_middleware(
            CORSMiddleware,
            allow_origins=security.cors_origins,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Client-ID"],
            expose_headers=["X-Request-ID", "X-Model-Version", "Retry-After"],
        )

    def is_admin(request: Request) -> bool:
        """Whether the request carries an admin credential (checked by the security layer)."""
        return "admin" in getattr(request.state, "scopes", ())

    async def choose_model(request: Request, ref: str | None) -> LoadedModel:
        """The model for ``?model=`` (a dict lookup once resolved)."""
        model = store.cached(ref)
        if model is None:
            if ref is None or ref == default_ref:
                raise ProblemError(503, "no model is loaded yet", slug="not-ready")
            try:
                model = await run_in_threadpool(store.resolve, ref)
            except ModelNotFoundError as exc:
                raise ProblemError(404, str(exc), slug="model-not-found") from None
            except Exception as exc:  # registry down, unreadable model file
                logger.exception("model %r could not be loaded", ref)
                raise ProblemError(
                    503, f"model {ref!r} could not be loaded: {type(exc).__name__}", slug="model"
                ) from exc
        if model.gates_failed and ref is not None and not is_admin(request):
            raise ProblemError(
                403,
                f"{model.name} version {model.version} failed its quality gates: it is served "
                "only to an admin who asks for it (Authorization: Bearer <admin token>)",
                slug="gates-failed",
            )
        request.state.model_version = model.version
        return model

    async def answer(
        request: Request,
        model: LoadedModel,
        inputs: ModelInputs,
        *,
        ref: str | None,
        route_name: str,
    ) -> Response:
        """Run the model (photos on the photo model unless ``?model=`` chose one), log every
        prediction durably, and shape the JSON answer."""
        arm = rollout.arm(request) if ref is None else ""
        arm_model = rollout.model(arm, model)
        try:
            predictions, answered, path, fallback = await router.predict(
                predictor, arm_model, inputs, route=ref is None
            )
        except ProblemError:
            raise
        except Exception as exc:  # a failing challenger: counted, the champion answers
            if arm_model is model:
                raise
            rollout.record_failure(arm, exc)
            arm, arm_model = "", model
            predictions, answered, path, fallback = await router.predict(
                predictor, model, inputs, route=True
            )
        logged_arm = arm if answered.key == arm_model.key else ""  # photos: the photo model
        recorder.record(request, inputs, predictions, alias=ref, arm=logged_arm, route=route_name)
        if logged_arm:
            metrics.observe_arm(
                experiment=rollout.config.experiment,
                mode=rollout.config.mode,
                arm=logged_arm,
                version=answered.version,
                predictions=predictions,
            )
        request.state.model_version = answered.version
        body = {
            "predictions": predictions,
            "model_name": answered.name,
            "model_version": answered.version,
            "path": path,
            "fallback": fallback,
            "request_id": request.state.request_id,
        }
        if logged_arm:
            body["arm"] = logged_arm
        shadow = None
        if logged_arm and rollout.config.mode == "shadow" and rollout.challenger is not None:
            shadow = BackgroundTask(score_shadow, request, rollout.challenger, inputs, route_name)
        return _json(body, headers={"X-Model-Version": str(answered.version)}, background=shadow)

    async def score_shadow(
        request: Request, challenger: LoadedModel, inputs: ModelInputs, route_name: str
    ) -> None:
        """After the response: the challenger scores the same inputs; logged as its arm."""
        started = time.perf_counter()  # the shadow's latency: its own scoring, not the wait
        try:
            predictions = await predictor.predict(challenger, inputs)
            recorder.record(
                request,
                inputs,
                predictions,
                alias=rollout.config.challenger,
                arm=CHALLENGER,
                route=route_name,
                id_suffix=SHADOW_SUFFIX,
                started=started,
            )
            metrics.observe_arm(
                experiment=rollout.config.experiment,
                mode=rollout.config.mode,
                arm=CHALLENGER,
                version=challenger.version,
                predictions=predictions,
            )
        except Exception as exc:  # the client has its answer; the failure is counted
            rollout.record_failure(CHALLENGER, exc)

    errors_predict = problem_responses(400, 403, 404, 413, 415, 422, 503)

    @app.post(
        "/v1/predict",
        tags=["predict"],
        summary="Classify one image (or a few JSON instances)",
        response_model=PredictResponse,
        responses=errors_predict,
        openapi_extra=request_body(batch=False),
    )
    async def predict(
        request: Request, model: ModelQuery = None, return_image: ReturnImageQuery = False
    ) -> Response:
        """Multipart field ``file``, a raw ``image/*`` body, or JSON ``{"instances": [...]}``."""
        chosen = await choose_model(request, model)
        inputs = await read_inputs(
            request,
            batch=False,
            max_instances=max_batch,
            guard=guard,
            return_image=return_image,
            segmentation=serving.segmentation,
        )
        return await answer(request, chosen, inputs, ref=model, route_name="/v1/predict")

    @app.post(
        "/v1/predict/batch",
        tags=["predict"],
        summary="Classify many images",
        response_model=PredictResponse,
        responses=errors_predict,
        openapi_extra=request_body(batch=True),
    )
    async def predict_batch(
        request: Request, model: ModelQuery = None, return_image: ReturnImageQuery = False
    ) -> Response:
        """JSON ``{"instances": [...]}`` or multipart with repeated ``file``/``files`` fields."""
        chosen = await choose_model(request, model)
        inputs = await read_inputs(
            request,
            batch=True,
            max_instances=max_batch,
            guard=guard,
            return_image=return_image,
            segmentation=serving.segmentation,
        )
        return await answer(request, chosen, inputs, ref=model, route_name="/v1/predict/batch")

    platform_route = serving.platform_predict_route
    if platform_route:  # Vertex AI's AIP_PREDICT_ROUTE (serving.platform_env)

        @app.post(platform_route, tags=["predict"], include_in_schema=False)
        async def platform_predict(request: Request) -> Response:
            """``{"instances": [...]}`` -> ``{"predictions": [...]}`` (a platform's contract)."""
            chosen = await choose_model(request, None)
            inputs = await read_inputs(
                request,
                batch=True,
                max_instances=max_batch,
                guard=guard,
                return_image=False,
                segmentation=serving.segmentation,
            )
            answered = await answer(request, chosen, inputs, ref=None, route_name=platform_route)
            if answered.status_code != 200:
                return answered
            body = json.loads(bytes(answered.body))
            kept = {k: v for k, v in answered.headers.items() if k.startswith("x-")}
            return _json(
                {"predictions": body["predictions"]},
                headers=kept,
                background=answered.background,  # shadow scoring, as on /v1/predict
            )

    @app.get(
        "/v1/models",
        tags=["models"],
        summary="Registered versions and the loaded ones",
        response_model=ModelsResponse,
        responses=problem_responses(503),
    )
    async def models() -> Response:
        """Every registered version of the default model, with its aliases and load state."""
        try:
            versions = await run_in_threadpool(store.versions)
        except Exception as exc:
            raise ProblemError(503, f"model registry unavailable: {exc}", slug="registry") from exc
        default = store.default
        photo = store.cached(serving.photo_model) if serving.photo_model else None
        loaded = store.loaded()
        loaded_keys = {m.key for m in loaded}
        return _json(
            {
                "registered_model": store.default_name,
                "default_ref": default_ref,
                "served": default.describe() if default is not None else None,
                "photo_model": {
                    "ref": serving.photo_model,
                    "served": photo.describe() if photo is not None else None,
                },
                "loaded": [m.describe() for m in loaded],
                "versions": [
                    {
                        **v.to_dict(),
                        "loaded": (v.name, v.version) in loaded_keys,
                        "served": default is not None and default.key == (v.name, v.version),
                    }
                    for v in versions
                ],
            }
        )

    @app.post(
        "/v1/admin/reload",
        tags=["admin"],
        summary="Serve the model the default alias points at now",
        response_model=ReloadResponse,
        responses=problem_responses(401, 403, 404, 503),
    )
    async def admin_reload(_credentials: AdminCredentials) -> Response:
        """Check the registry now and hot-swap the default model if its alias moved (admin
        scope: checked by the security layer before the route runs)."""
        try:
            result = await reload()
        except FmnistError as exc:
            raise ProblemError(503, str(exc), slug="reload-failed") from exc
        return _json(
            {
                "reloaded": result.changed,
                "previous_version": result.previous[1] if result.previous else None,
                "model_name": result.current[0],
                "model_version": result.current[1],
            }
        )

    @app.get(
        "/v1/samples",
        tags=["ui"],
        summary="Fashion-MNIST test images",
        response_model=SamplesResponse,
        responses=problem_responses(404, 422),
    )
    async def sample_images(
        n: Annotated[int, Query(ge=1, le=100, description="how many images"), DecimalInteger] = 12,
        seed: Annotated[
            int, Query(ge=0, le=2**32 - 1, description="random seed"), DecimalInteger
        ] = 0,
    ) -> Response:
        """Test images of the newest data snapshot, as base64 PNGs with their labels."""
        try:
            payload = await run_in_threadpool(samples.draw, n, seed)
        except SnapshotNotFoundError as exc:
            raise ProblemError(404, str(exc), slug="no-snapshot") from exc
        return _json(payload)

    @app.get("/healthz", tags=["operations"], summary="Liveness", response_model=Status)
    async def healthz() -> Response:
        """Always 200 while the process runs."""
        return _json({"status": "ok"})

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness",
        response_model=Status,
        responses=problem_responses(503),
    )
    async def readyz() -> Response:
        """200 once the default model is loaded and, under ``monitoring.log_failure:
        fail_closed``, while the prediction log can be written; else a 503 problem."""
        default = store.default
        if default is None:
            raise ProblemError(503, "the default model is not loaded", slug="not-ready")
        if settings.monitoring.log_failure == "fail_closed" and not recorder.accepting():
            raise ProblemError(
                503,
                "the prediction log cannot be written, so predictions are refused "
                "(monitoring.log_failure: fail_closed)",
                slug="log-unavailable",
                title="Prediction log unavailable",
            )
        return _json(
            {"status": "ready", "model_name": default.name, "model_version": default.version}
        )

    if serving.platform_health_route not in (None, "/readyz", "/healthz"):  # AIP_HEALTH_ROUTE
        app.add_api_route(
            serving.platform_health_route, readyz, methods=["GET"], include_in_schema=False
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"description": "text exposition format", "content": {"text/plain": {}}}},
    )
    async def prometheus_metrics() -> Response:
        """Prometheus text exposition of the metrics (of every worker process)."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    add_card_routes(app, store, settings)  # GET /v1/models/{name}/{version}/card
    add_feedback_routes(app, feedback, metrics)  # POST /v1/feedback
    add_monitoring_routes(app, settings)  # GET /v1/monitoring/summary, /v1/monitoring/report
    # POST /v1/explain (torch, imported lazily)
    add_explain_routes(app, settings, services.storage, choose_model, guard)
    add_rollout_routes(app, rollout, serving)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = problem_media_types(get_openapi_document(app))
            # /metrics may need a key (security.metrics_require_key): documented as if it does.
            app.openapi_schema = layer_problems(
                spec, lambda method, path: route_scope(method, path, True, platform_route)
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    if UI_DIR.is_dir():
        app.router.routes.append(
            _UiMount("/", app=StaticFiles(directory=UI_DIR, html=True), name="ui")
        )
    return app
