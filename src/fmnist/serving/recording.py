"""Every prediction the API serves becomes one record of the durable prediction log.

:class:`PredictionRecorder` turns a request's predictions into
:class:`~fmnist.monitoring.records.PredictionRecord` rows and appends them in one transaction
before the response is sent, so a client that received a 200 finds its record after a
``kill -9`` of the server (the log's durability contract). The append is one ``write`` to
the process's append-only journal (:mod:`fmnist.monitoring.journal`, a few microseconds); a
separate mover process moves it into the SQLite log within a fraction of a second, off the
request path and off this process's GIL.

Each prediction gets its own request id: the request's ``X-Request-ID`` when the request has one
prediction, else ``<request id>:<index>``; that id is what ``POST /v1/feedback`` takes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fmnist.identity import digest_text
from fmnist.monitoring.journal import PredictionJournal
from fmnist.monitoring.journal_frames import encode_frame
from fmnist.monitoring.log_schema import flags_json
from fmnist.monitoring.records import InputKind

if TYPE_CHECKING:
    from starlette.requests import Request

    from fmnist.monitoring.prediction_log import PredictionLog
    from fmnist.serving.inputs import ModelInputs

logger = logging.getLogger("fmnist.serving")

CLIENT_ID_HEADER = "x-client-id"
"""The header naming the calling client (stored hashed, never as sent)."""


def prediction_ids(request_id: str, count: int) -> list[str]:
    """The request id of each of ``count`` predictions of one request."""
    return [request_id] if count == 1 else [f"{request_id}:{i}" for i in range(count)]


def input_kind(prediction: dict[str, Any], has_detail: bool) -> InputKind:
    """``photo`` (photo pipeline), ``upload`` (an image file) or ``json`` (pixel instance)."""
    if not has_detail:
        return "json"
    return "photo" if prediction.get("path") == "photo" else "upload"


class PredictionRecorder:
    """Writes the predictions of each request to the prediction log (``log`` None: off)."""

    def __init__(
        self, log: PredictionLog | None, *, default_alias: str, move_interval_s: float = 0.2
    ) -> None:
        """Record into ``log``; versions served by default are labelled ``default_alias``;
        journal lines are moved into the log every ``move_interval_s`` seconds."""
        self.log = log
        self.default_alias = default_alias
        self.journal = (
            PredictionJournal(log, move_interval_s=move_interval_s) if log is not None else None
        )

    def close(self) -> None:
        """Close the journal and let the mover move the rest into the log (the app's
        shutdown)."""
        if self.journal is not None:
            self.journal.close()

    def stamp(
        self, request: Request, predictions: Sequence[dict[str, Any]], suffix: str = ""
    ) -> None:
        """Give each prediction its ``request_id`` (also when the log is off)."""
        for rid, prediction in zip(
            prediction_ids(request.state.request_id, len(predictions)), predictions, strict=True
        ):
            prediction["request_id"] = rid + suffix

    def record(
        self,
        request: Request,
        inputs: ModelInputs,
        predictions: Sequence[dict[str, Any]],
        *,
        alias: str | None = None,
        arm: str = "",
        route: str = "",
        id_suffix: str = "",
        started: float | None = None,
    ) -> None:
        """Stamp the predictions and return once their records are in the operating system's
        hands (the journal), before the response is sent. ``id_suffix`` marks a second
        prediction of the same request (the shadow challenger's); ``started`` (a
        ``perf_counter`` reading, default the request's start) is where its latency begins."""
        self.stamp(request, predictions, id_suffix)
        if self.journal is None:
            return
        state = request.state
        if started is None:
            started = getattr(state, "started", None)
        latency_ms = (time.perf_counter() - started) * 1000.0 if started is not None else 0.0
        client = request.headers.get(CLIENT_ID_HEADER)
        client_id = digest_text(client, length=32) if client else ""
        ts_us = time.time_ns() // 1000
        model_alias = alias if alias is not None else self.default_alias
        frames = []
        for i, prediction in enumerate(predictions):
            frames.append(
                encode_frame(
                    request_id=prediction["request_id"],
                    ts_us=ts_us,
                    model_name=prediction["model_name"],
                    model_version=prediction["model_version"],
                    model_alias=model_alias,
                    arm=arm,
                    input_kind=input_kind(prediction, inputs.details[i] is not None),
                    pixels=inputs.pixels[i].tobytes(),
                    probabilities=prediction["probabilities"],
                    predicted_class=prediction["label"],
                    confidence=prediction["confidence"] or 0.0,
                    latency_ms=latency_ms,
                    client_id=client_id,
                    photo_flags=flags_json(prediction.get("preprocessing") or {}),
                    route=route,
                )
            )
        self.journal.write(b"".join(frames))
