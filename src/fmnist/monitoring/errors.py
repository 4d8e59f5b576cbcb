"""Failures of the prediction log, the feedback store and their commands (one line each).

The API maps them to status codes: :class:`UnknownRequestError` to 404,
:class:`FeedbackConflictError` to 409, :class:`InvalidFeedbackError` to 422.
"""

from __future__ import annotations

from fmnist.errors import FmnistError


class MonitoringError(FmnistError):
    """Base class of the monitoring failures (also bad arguments of ``fmnist monitor``)."""


class UnknownRequestError(MonitoringError):
    """No logged prediction has this request id."""

    def __init__(self, request_id: str) -> None:
        """Name the request id that was not found."""
        super().__init__(f"no logged prediction has request id {request_id!r}")
        self.request_id = request_id


class FeedbackConflictError(MonitoringError):
    """The request already has feedback with a different label."""

    def __init__(self, request_id: str, stored: str, sent: str) -> None:
        """Name the request and both labels (``stored`` first)."""
        super().__init__(f"request {request_id!r} already has feedback {stored}; refusing {sent}")
        self.request_id = request_id


class InvalidFeedbackError(MonitoringError):
    """A label outside 0..9, or a label together with ``unknown``, or neither."""
