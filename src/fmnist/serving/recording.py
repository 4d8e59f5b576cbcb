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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fmnist.monitoring.journal import JournalWriteError, PredictionJournal
from fmnist.monitoring.journal_frames import encode_frame
from fmnist.monitoring.log_schema import flags_json
from fmnist.monitoring.records import InputKind

if TYPE_CHECKING:
    from starlette.requests import Request

    from fmnist.monitoring.client_ids import ClientIdHasher
    from fmnist.monitoring.prediction_log import PredictionLog
    from fmnist.serving.inputs import ModelInputs

logger = logging.getLogger("fmnist.serving")

CLIENT_ID_HEADER = "x-client-id"
"""The header naming the calling client (stored as a salted hash, never as sent)."""


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
        self,
        log: PredictionLog | None,
        *,
        default_alias: str,
        client_ids: ClientIdHasher | None = None,
        move_interval_s: float = 0.2,
        on_failure: Callable[[JournalWriteError, int], None] | None = None,
    ) -> None:
        """Record into ``log``; versions served by default are labelled ``default_alias``;
        ``client_ids`` hashes the ``X-Client-ID`` header (required when ``log`` is given);
        journal lines are moved into the log every ``move_interval_s`` seconds; a write that
        fails goes to ``on_failure(error, predictions)`` (which may raise: the answer), else
        raises (see :mod:`fmnist.serving.log_failures`)."""
        if log is not None and client_ids is None:
            raise ValueError("a prediction log needs a client id hasher")
        self.log = log
        self.client_ids = client_ids
        self.default_alias = default_alias
        self.on_failure = on_failure
        self.journal = (
            PredictionJournal(log, move_interval_s=move_interval_s) if log is not None else None
        )

    def accepting(self) -> bool:
        """Whether a record would be written now (always, with the log off); see
        :meth:`~fmnist.monitoring.journal.PredictionJournal.probe`."""
        return self.journal is None or self.journal.probe()

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
        client_id = self.client_ids(client) if client and self.client_ids else ""
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
        try:
            self.journal.write(b"".join(frames))
        except JournalWriteError as exc:
            if self.on_failure is None:
                raise
            self.on_failure(exc, len(frames))
