"""``POST /v1/feedback``: the true label of a logged prediction.

Idempotent by request id: the first label is stored (201), the same label again changes nothing
(200), a different label is refused (409), an unknown request id is 404, an invalid body 422.
``{"unknown": true}`` records an item outside the ten classes. Feedback is stored in the
prediction log's database, as durably as the predictions; live accuracy per model version is
exported as ``fmnist_live_accuracy`` / ``fmnist_labelled_predictions`` (recomputed at most once
a second per model: :class:`CoalescedRefresh`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fmnist import CLASS_NAMES
from fmnist.monitoring.errors import (
    FeedbackConflictError,
    InvalidFeedbackError,
    UnknownRequestError,
)
from fmnist.monitoring.journal import replay_journals
from fmnist.serving.problems import ProblemError
from fmnist.serving.schemas import problem_responses

if TYPE_CHECKING:
    from fmnist.monitoring.feedback import FeedbackStore
    from fmnist.serving.metrics import ServingMetrics

logger = logging.getLogger("fmnist.serving")

REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,160}$"
LIVE_ACCURACY_REFRESH_S = 1.0
"""The live-accuracy gauges of a model are recomputed (a scan of all its feedback) at most once
per this interval: once per label, the scan grew with the table and made a soak's feedback
quadratic (benchmarks/bench_soak.py)."""


class CoalescedRefresh:
    """Runs ``action(key)`` at once when it has not run for ``key`` in the last ``interval_s``
    seconds, else once at the end of that interval: calls in between coalesce into that one.
    Deferred runs happen on one long-lived thread (a thread per run would open a new SQLite
    connection each time: the log's read connections are per thread)."""

    def __init__(self, action: Callable[[str], None], interval_s: float) -> None:
        """Coalesce the calls of ``action`` per key over ``interval_s`` seconds."""
        self.action = action
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._due: dict[str, float] = {}
        self._wake = threading.Condition()
        self._worker: threading.Thread | None = None

    def __call__(self, key: str) -> None:
        """Run now, or make sure one run follows within ``interval_s``."""
        with self._wake:
            now = time.monotonic()
            due = self._last.get(key, now - self.interval_s) + self.interval_s
            if due > now:
                self._due.setdefault(key, due)
                if self._worker is None:
                    self._worker = threading.Thread(
                        target=self._deferred, name="live-accuracy", daemon=True
                    )
                    self._worker.start()
                self._wake.notify()
                return
            self._last[key] = now
        self.action(key)

    def _deferred(self) -> None:
        while True:
            with self._wake:
                while not self._due:
                    self._wake.wait()
                key, due = min(self._due.items(), key=lambda item: item[1])
                if due > time.monotonic():
                    self._wake.wait(due - time.monotonic())
                    continue
                del self._due[key]
                self._last[key] = time.monotonic()
            try:
                self.action(key)
            except Exception:  # its own thread: nobody else would see it
                logger.exception("deferred refresh of %s failed", key)


class FeedbackRequest(BaseModel):
    """The true label of a prediction, or ``unknown`` for an item outside the ten classes."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=REQUEST_ID_PATTERN, description="the prediction's id")
    label: int | None = Field(
        None, ge=0, le=len(CLASS_NAMES) - 1, description="true class id, 0..9"
    )
    unknown: bool = Field(False, description="the item is none of the ten classes")


class FeedbackResponse(BaseModel):
    """What was stored."""

    request_id: str
    label: int | None
    unknown: bool
    status: str = Field(description="created (201) or unchanged (200)")


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the same label again: nothing changed", "model": FeedbackResponse},
    **problem_responses(404, 409, 422, 503),
}


def _json(payload: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(payload), status_code=status, media_type="application/json")


def add_feedback_routes(
    app: FastAPI, feedback: FeedbackStore | None, metrics: ServingMetrics
) -> None:
    """Add ``POST /v1/feedback`` (503 problem when the prediction log is off)."""

    def refresh_live_accuracy(model_name: str) -> None:
        accuracy = feedback.live_accuracy(model_name=model_name) if feedback else None
        for model in accuracy.models if accuracy else ():
            if model.overall is None:
                continue
            labels = (model.model_name, str(model.model_version))
            metrics.live_accuracy.labels(*labels).set(model.overall.accuracy)
            metrics.labelled.labels(*labels).set(model.overall.n)

    refresh = CoalescedRefresh(refresh_live_accuracy, LIVE_ACCURACY_REFRESH_S)

    def store(body: FeedbackRequest) -> tuple[str, str | None]:
        assert feedback is not None
        try:
            outcome = feedback.record(body.request_id, body.label, body.unknown)
        except UnknownRequestError:
            # The prediction may still be in a server process's journal (moved into the log
            # within a fraction of a second): replay the journals, then look once more.
            replay_journals(feedback.log)
            outcome = feedback.record(body.request_id, body.label, body.unknown)
        stored = feedback.log.get(body.request_id)
        model_name = stored.model_name if stored is not None else None
        if outcome == "created" and model_name is not None:
            refresh(model_name)
        return outcome, model_name

    @app.post(
        "/v1/feedback",
        tags=["monitoring"],
        summary="Record the true label of a logged prediction",
        status_code=201,
        response_model=FeedbackResponse,
        responses=_RESPONSES,
    )
    async def post_feedback(body: FeedbackRequest) -> Response:
        """``{"request_id", "label"}`` or ``{"request_id", "unknown": true}``."""
        if feedback is None:
            raise ProblemError(
                503, "the prediction log is off (monitoring.log_enabled)", slug="log-disabled"
            )
        try:
            outcome, _ = await run_in_threadpool(store, body)
        except UnknownRequestError as exc:
            metrics.feedback.labels("unknown_request").inc()
            raise ProblemError(404, str(exc), slug="unknown-request") from None
        except FeedbackConflictError as exc:
            metrics.feedback.labels("conflict").inc()
            raise ProblemError(409, str(exc), slug="feedback-conflict") from None
        except InvalidFeedbackError as exc:
            metrics.feedback.labels("invalid").inc()
            raise ProblemError(422, str(exc), slug="invalid-feedback") from None
        metrics.feedback.labels(outcome).inc()
        payload = FeedbackResponse(
            request_id=body.request_id, label=body.label, unknown=body.unknown, status=outcome
        )
        return _json(payload.model_dump(), 201 if outcome == "created" else 200)
