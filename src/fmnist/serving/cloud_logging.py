"""Log records as one JSON object per line, in the shape Cloud Logging reads from stdout/stderr.

``serving.log_format: json`` (the default on Cloud Run and Vertex AI, see
:mod:`fmnist.serving.platform_env`) switches every fmnist and uvicorn logger to
:class:`CloudLoggingFormatter`: ``severity``, ``message``, ``time``, ``logger``; access-log
records also carry ``httpRequest`` (method, URL path, status, latency, user agent, remote IP) and
the request's trace (``logging.googleapis.com/trace``, ``.../spanId``, ``.../trace_sampled``)
from ``X-Cloud-Trace-Context`` or W3C ``traceparent``, so Cloud Logging groups a request's lines
and links them to Cloud Trace. See https://cloud.google.com/logging/docs/structured-logging.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import UTC, datetime
from typing import Any

SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?(?:;o=([01]))?$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
TRACE_KEY = "logging.googleapis.com/trace"


def parse_trace(
    cloud_trace_context: str | None, traceparent: str | None
) -> tuple[str, str | None, bool] | None:
    """(trace id, span id, sampled) from ``X-Cloud-Trace-Context`` (preferred) or W3C
    ``traceparent``; None when neither header is well formed."""
    if cloud_trace_context:
        match = _CLOUD_TRACE.match(cloud_trace_context.strip())
        if match:
            span = match.group(2)
            return (
                match.group(1).lower(),
                format(int(span), "016x") if span else None,
                (match.group(3) == "1"),
            )
    if traceparent:
        match = _TRACEPARENT.match(traceparent.strip())
        if match and match.group(1) != "0" * 32:
            return match.group(1), match.group(2), int(match.group(3), 16) & 1 == 1
    return None


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def __init__(self, project: str | None = None) -> None:
        """``project`` qualifies trace ids (default: ``GOOGLE_CLOUD_PROJECT``, else none)."""
        super().__init__()
        self.project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line of ``record``."""
        entry: dict[str, Any] = {
            "severity": SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        http_request = getattr(record, "http_request", None)
        if isinstance(http_request, dict):
            entry["httpRequest"] = http_request
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        trace = getattr(record, "trace", None)
        if trace:
            trace_id, span_id, sampled = trace
            entry[TRACE_KEY] = (
                f"projects/{self.project}/traces/{trace_id}" if self.project else trace_id
            )
            if span_id:
                entry["logging.googleapis.com/spanId"] = span_id
            entry["logging.googleapis.com/trace_sampled"] = sampled
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
