"""Champion/challenger traffic on the default route: sticky A/B split and shadow scoring.

:class:`Rollout` holds the live configuration (:class:`~fmnist.config.RolloutSettings`) and the
loaded challenger. ``ab``: a request's arm comes from its client id (``X-Client-ID``, else its
request id) hashed with the experiment's salt (:func:`~fmnist.rollout.assignment.assign_arm`).
``shadow``: the champion answers, the challenger scores the same inputs after the response.

``PUT /v1/admin/rollout`` (admin token) changes the configuration at run time. The change is
refused (409) when the challenger failed a quality gate or is the champion itself; an accepted
change is written to ``<home>/rollout/state.json`` (atomically; every worker process picks it
up on its next registry poll, and it survives a restart) and to the audit log.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fmnist.audit import AuditLog
from fmnist.config import RolloutSettings, ServingSettings
from fmnist.rollout.assignment import CHALLENGER, CHAMPION, assign_arm
from fmnist.rollout.failures import FAILURES_FILE, record_failure
from fmnist.rollout.state import read_state, write_state
from fmnist.serving.model_store import LoadedModel, ModelNotFoundError, ModelStore
from fmnist.serving.problems import ProblemError
from fmnist.serving.recording import CLIENT_ID_HEADER
from fmnist.serving.schemas import problem_responses

logger = logging.getLogger("fmnist.serving")


SPLIT_MODES = ("ab", "canary")
"""Modes in which the challenger answers its share of the clients."""


class RolloutChange(BaseModel):
    """A new rollout configuration (``PUT /v1/admin/rollout``)."""

    mode: str = Field(pattern="^(off|ab|shadow|canary)$", description="off | ab | shadow | canary")
    experiment: str = Field("default", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    challenger: str = Field("challenger", min_length=1, max_length=200)
    share: float = Field(
        0.1, ge=0, le=1, strict=True, description="share of clients on the challenger (ab)"
    )
    reason: str = Field("", max_length=500, description="why (kept in the audit log)")


class Rollout:
    """The live rollout configuration of one server process (see the module docstring)."""

    def __init__(
        self, settings: RolloutSettings, store: ModelStore, audit: AuditLog, state_path: Path
    ) -> None:
        """Start from ``settings``, or from the state file when one was written."""
        self.config = settings
        self.store = store
        self.audit = audit
        self.state_path = state_path
        self.challenger: LoadedModel | None = None
        self._state_mtime: float | None = None
        self.started_at = datetime.now(UTC)
        """When the configuration in use was set (the state file's time, else start-up)."""

    @property
    def active(self) -> bool:
        """Whether the default route splits or shadows traffic now."""
        return self.config.mode != "off" and self.challenger is not None

    def arm(self, request: Request) -> str:
        """The arm of a default-route request: ``champion``/``challenger`` (ab), ``champion``
        (shadow) or ``""`` (no rollout)."""
        if not self.active:
            return ""
        if self.config.mode == "shadow":
            return CHAMPION
        client = request.headers.get(CLIENT_ID_HEADER) or request.state.request_id
        return assign_arm(client, self.config.experiment, self.config.share)

    def record_failure(self, arm: str, error: BaseException) -> None:
        """Count a prediction that failed on ``arm`` (the canary's error-rate guard)."""
        logger.error("prediction on the %s arm failed: %r", arm, error)
        record_failure(
            self.state_path.with_name(FAILURES_FILE), arm, self.config.experiment, repr(error)
        )

    def model(self, arm: str, champion: LoadedModel) -> LoadedModel:
        """The model that answers ``arm``."""
        if arm == CHALLENGER and self.config.mode in SPLIT_MODES and self.challenger is not None:
            return self.challenger
        return champion

    # -- changes (blocking: run them in a thread) ----------------------------------------------

    def _load_challenger(self, config: RolloutSettings) -> LoadedModel | None:
        if config.mode == "off":
            return None
        try:
            model = self.store.resolve(config.challenger)
        except ModelNotFoundError as exc:
            raise ProblemError(404, str(exc), slug="model-not-found") from None
        champion = self.store.default
        if model.gates_failed:
            raise ProblemError(
                409,
                f"{model.name} version {model.version} failed its quality gates: "
                "it cannot be a challenger",
                slug="gates-failed",
            )
        if champion is not None and model.key == champion.key:
            raise ProblemError(
                409, f"{config.challenger!r} is the champion itself", slug="same-model"
            )
        return model

    def change(self, change: RolloutChange, actor: str) -> dict[str, Any]:
        """Apply ``change`` (validated, challenger loaded), persist and audit it."""
        config = RolloutSettings.model_validate(
            {**self.config.model_dump(), **change.model_dump(exclude={"reason"})}
        )
        challenger = self._load_challenger(config)
        previous = self.describe()
        self.config, self.challenger = config, challenger
        write_state(self.state_path, config)
        self._state_mtime = self.state_path.stat().st_mtime
        self.started_at = datetime.fromtimestamp(self._state_mtime, UTC)
        current = self.describe()
        self.audit.append(actor, "rollout.change", change.reason, {"from": previous, "to": current})
        logger.info("rollout changed: %s", current)
        return current

    def start(self) -> None:
        """At start-up: the state file's configuration if there is one, else the settings'
        (a challenger that cannot be served turns the rollout off, with an error logged)."""
        if self.refresh() or self.config.mode == "off":
            return
        try:
            self.challenger = self._load_challenger(self.config)
        except ProblemError as exc:
            logger.error("rollout %s not started: %s", self.config.mode, exc.detail)

    def refresh(self) -> bool:
        """Pick up a change another worker process wrote (the state file); True if changed."""
        try:
            mtime = self.state_path.stat().st_mtime
        except FileNotFoundError:
            return False
        if mtime == self._state_mtime:
            return False
        config = read_state(self.state_path, self.config)
        if config is None:  # removed meanwhile
            return False
        try:
            challenger = self._load_challenger(config)
        except ProblemError as exc:
            logger.error("rollout state %s not applied: %s", self.state_path, exc.detail)
            challenger, config = None, config.model_copy(update={"mode": "off"})
        self.config, self.challenger, self._state_mtime = config, challenger, mtime
        self.started_at = datetime.fromtimestamp(mtime, UTC)
        return True

    def describe(self) -> dict[str, Any]:
        """The configuration and the challenger version in use (JSON)."""
        challenger = self.challenger
        return {
            "mode": self.config.mode if challenger is not None else "off",
            "experiment": self.config.experiment,
            "challenger": self.config.challenger,
            "challenger_model": None
            if challenger is None
            else {"name": challenger.name, "version": challenger.version},
            "share": self.config.share,
            "since": self.started_at.isoformat(),
        }


def require_admin(request: Request, serving: ServingSettings) -> None:
    """401 unless the security layer found an admin credential on the request (it answers
    404 itself when no admin credential is configured at all)."""
    if "admin" not in getattr(request.state, "scopes", ()):
        raise ProblemError(
            401,
            "missing or invalid API key: send 'Authorization: Bearer <admin key>'",
            slug="unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="fmnist"'},
        )


def add_rollout_routes(app: FastAPI, rollout: Rollout, serving: ServingSettings) -> None:
    """``GET`` and ``PUT /v1/admin/rollout`` (admin token)."""

    def _json(payload: dict[str, Any]) -> Response:
        return Response(json.dumps(payload), media_type="application/json")

    @app.get(
        "/v1/admin/rollout",
        tags=["admin"],
        summary="The champion/challenger split of the default route",
        responses=problem_responses(401, 403, 404),
    )
    async def get_rollout(request: Request) -> Response:
        """The rollout configuration and the challenger version in use."""
        require_admin(request, serving)
        return _json(rollout.describe())

    @app.put(
        "/v1/admin/rollout",
        tags=["admin"],
        summary="Change the champion/challenger split (audited)",
        responses=problem_responses(401, 403, 404, 409, 422),
    )
    async def put_rollout(request: Request, change: RolloutChange) -> Response:
        """Start, change or stop an A/B test or shadow scoring; written to the audit log."""
        require_admin(request, serving)
        return _json(await run_in_threadpool(rollout.change, change, "admin"))
