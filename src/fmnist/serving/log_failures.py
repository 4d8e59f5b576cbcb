"""What a prediction answers when its record cannot be written (``monitoring.log_failure``).

* ``fail_closed`` (default): the request is answered 503 (problem ``log-unavailable``, with
  ``Retry-After``), so a 200 always means "logged";
* ``fail_open``: the prediction is answered 200 anyway and counted in
  ``fmnist_prediction_log_unlogged_predictions_total``, which the Prometheus alert
  ``FmnistPredictionsUnlogged`` watches.

Either way the failed write is counted in ``fmnist_prediction_log_write_errors_total`` and logged
as an error (at most one line per ``report_interval_s``, with the count since the last one, so a
full disk does not flood the log). Nothing needs resetting: every request tries the journal
again, so logging resumes as soon as the cause (a full disk) is gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from fmnist.monitoring.journal import JournalWriteError
from fmnist.serving.metrics import ServingMetrics
from fmnist.serving.problems import ProblemError

logger = logging.getLogger("fmnist.serving")

LogFailurePolicy = Literal["fail_closed", "fail_open"]
RETRY_AFTER_S = 5
"""The ``Retry-After`` of a 503 ``log-unavailable`` answer."""


class LogFailureHandler:
    """Applies the policy to each failed write (called by the prediction recorder)."""

    def __init__(
        self,
        policy: LogFailurePolicy,
        metrics: ServingMetrics,
        *,
        report_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Handle failures under ``policy``, counting them in ``metrics``."""
        self.policy = policy
        self.metrics = metrics
        self.report_interval_s = report_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next_report = float("-inf")
        self._unreported = 0

    def __call__(self, error: JournalWriteError, predictions: int) -> None:
        """Count a request whose ``predictions`` could not be logged; raise the 503 problem
        under ``fail_closed``, return (the answer goes out) under ``fail_open``."""
        self.metrics.log_write_errors.inc()
        closed = self.policy == "fail_closed"
        if not closed:
            self.metrics.unlogged_predictions.inc(predictions)
        self._report(error, predictions, "refused (503)" if closed else "answered unlogged")
        if closed:
            raise ProblemError(
                503,
                "the prediction log cannot be written, so the prediction is not answered "
                "(monitoring.log_failure: fail_closed); retry later",
                slug="log-unavailable",
                title="Prediction log unavailable",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )

    def _report(self, error: JournalWriteError, predictions: int, outcome: str) -> None:
        """Log an error now and then, with the predictions affected since the last one."""
        with self._lock:
            self._unreported += predictions
            now = self._clock()
            if now < self._next_report:
                return
            count, self._unreported = self._unreported, 0
            self._next_report = now + self.report_interval_s
        logger.error(
            "prediction log write failed: %s; %d predictions %s since the last report "
            "(monitoring.log_failure=%s)",
            error,
            count,
            outcome,
            self.policy,
        )
