"""The service graph handed to jobs, commands and the API: settings plus one adapter per port.

:mod:`fmnist.composition` builds it from the settings; nothing else constructs an adapter. Each
adapter is built on first use, so a command that never touches analytics never imports DuckDB.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from fmnist.config import Settings
    from fmnist.monitoring.feedback import FeedbackStore
    from fmnist.monitoring.prediction_log import PredictionLog
    from fmnist.platform.analytics import Analytics
    from fmnist.platform.events import EventBus
    from fmnist.platform.orchestration import Orchestrator
    from fmnist.platform.registry import ModelRegistry, RegistryFactory
    from fmnist.platform.storage import Storage

PortName = Literal["storage", "registry", "analytics", "events", "orchestration"]
PORTS: tuple[PortName, ...] = ("storage", "registry", "analytics", "events", "orchestration")


@dataclass(frozen=True)
class AdapterChoice:
    """Which adapter serves a port, why, and where it points (secrets masked)."""

    port: PortName
    adapter: str
    reason: str
    target: str


class Services:
    """Settings plus the adapters chosen for them, each built on first use."""

    def __init__(
        self,
        settings: Settings,
        choices: tuple[AdapterChoice, ...],
        *,
        storage: Callable[[str], Storage],
        registries: RegistryFactory,
        analytics: Callable[[], Analytics],
        events: Callable[[], EventBus],
        orchestrator: Callable[[Services], Orchestrator],
        prediction_log: Callable[[], PredictionLog],
        feedback: Callable[[PredictionLog], FeedbackStore],
    ) -> None:
        """Hold the factories; :mod:`fmnist.composition` is the only caller."""
        self.settings = settings
        self.choices = choices
        self._storage_factory = storage
        self._registries = registries
        self._factories: dict[str, Callable[[], object]] = {
            "analytics": analytics,
            "events": events,
            "orchestrator": lambda: orchestrator(self),
            "prediction_log": prediction_log,
            "feedback": lambda: feedback(self.prediction_log),
        }
        self._built: dict[str, object] = {}
        self._lock = threading.RLock()  # a factory may use another port (feedback: the log)

    def _get(self, name: str) -> object:
        with self._lock:
            if name not in self._built:
                self._built[name] = self._factories[name]()
            return self._built[name]

    @property
    def storage(self) -> Storage:
        """The data lake (``settings.resolved_lake_url``)."""
        with self._lock:
            lake = self._built.get("storage")
        if lake is None:
            lake = self.open_storage(self.settings.resolved_lake_url)
            with self._lock:
                self._built.setdefault("storage", lake)
        return self._built["storage"]  # type: ignore[return-value]

    def open_storage(self, url: str) -> Storage:
        """Storage rooted at another URL (an export location, a staging bucket)."""
        return self._storage_factory(url)

    def registry(
        self, model_name: str | None = None, *, experiment: str | None = None
    ) -> ModelRegistry:
        """Tracking and registry bound to ``model_name`` in ``experiment`` (default: the
        configured ones)."""
        return self._registries(model_name, experiment=experiment)

    @property
    def registries(self) -> RegistryFactory:
        """The registry factory itself, for code that addresses several registered models."""
        return self._registries

    @property
    def analytics(self) -> Analytics:
        """SQL over the prediction log and KPIs."""
        return self._get("analytics")  # type: ignore[return-value]

    @property
    def events(self) -> EventBus:
        """The event stream."""
        return self._get("events")  # type: ignore[return-value]

    @property
    def orchestrator(self) -> Orchestrator:
        """The pipeline runner."""
        return self._get("orchestrator")  # type: ignore[return-value]

    @property
    def prediction_log(self) -> PredictionLog:
        """The durable log of served predictions (and their feedback)."""
        return self._get("prediction_log")  # type: ignore[return-value]

    @property
    def feedback(self) -> FeedbackStore:
        """Ground-truth labels of logged predictions (same storage as the log)."""
        return self._get("feedback")  # type: ignore[return-value]

    def choice(self, port: PortName) -> AdapterChoice:
        """The adapter choice of ``port``."""
        return next(c for c in self.choices if c.port == port)
