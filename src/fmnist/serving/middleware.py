"""The ASGI layer around every request: request id, body limit, metrics, log line, last resort.

One pure ASGI middleware (no per-request task or copy of the body) that

* takes the client's ``X-Request-ID`` (if it is a short printable token) or makes one, stores it
  in ``scope["state"]["request_id"]`` and returns it as a response header;
* refuses a body above ``max_body_bytes`` from its ``Content-Length`` before reading it, and
  counts the bytes of a body without one (chunked upload), raising :class:`BodyTooLargeError`
  once the count passes the limit;
* records the request in the Prometheus metrics by route template, method and status;
* logs one line per request (method, route, status, latency, request id, model version; with
  the JSON log format also Cloud Logging's ``httpRequest`` and the trace of the request);
* turns any exception that escaped the app into a 500 problem (traceback logged, never sent).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmnist.serving.cloud_logging import parse_trace
from fmnist.serving.metrics import ServingMetrics
from fmnist.serving.problems import BodyTooLargeError, internal_error, problem_response

access_logger = logging.getLogger("fmnist.serving.access")
logger = logging.getLogger("fmnist.serving")

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
UNMATCHED = "unmatched"
PREDICTION_ROUTES = frozenset({"/v1/predict", "/v1/predict/batch", "/v1/explain"})
"""Routes whose rejected inputs are counted by kind (``fmnist_invalid_inputs_total``)."""


def route_label(scope: Scope) -> str:
    """The route template that handled the request (bounded label set for metrics)."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    if isinstance(route, Mount):
        return "ui" if route.name == "ui" else (route.path or "/")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestContextMiddleware:
    """Request id, body limit, metrics, access log and the last-resort 500 (see module doc)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServingMetrics,
        max_body_bytes: int,
        access_log: bool = True,
    ) -> None:
        """Wrap ``app``."""
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id: bytes | None = None
        content_length: bytes | None = None
        user_agent = cloud_trace = traceparent = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value
            elif name == b"content-length":
                content_length = value
            elif name == b"user-agent":
                user_agent = value
            elif name == b"x-cloud-trace-context":
                cloud_trace = value
            elif name == b"traceparent":
                traceparent = value
        if request_id is None or not _REQUEST_ID.match(request_id):
            request_id = uuid.uuid4().hex.encode()
        rid = request_id.decode()
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state["started"] = started
        id_header = (b"x-request-id", request_id)
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        limit = self.max_body_bytes
        received = 0

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        try:
            if (
                content_length is not None
                and content_length.isdigit()
                and int(content_length) > limit
            ):
                response = problem_response(
                    scope,
                    413,
                    f"request body of {int(content_length):,} bytes exceeds the limit of "
                    f"{limit:,} bytes",
                    slug="body-too-large",
                    headers={"Connection": "close"},
                    extensions={"limit_bytes": limit},
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, receive_counted, send_with_id)
        except Exception:
            if response_started:
                logger.exception("error after the response started request_id=%s", rid)
                raise
            logger.exception("unhandled error request_id=%s", rid)
            await internal_error(scope)(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_label(scope)
            method = scope["method"]
            self.metrics.observe_request(route, method, status, seconds)
            if 400 <= status < 500 and route in PREDICTION_ROUTES:
                self.metrics.invalid_inputs.labels(route, state.get("problem", "other")).inc()
            if self.access_log and access_logger.isEnabledFor(logging.INFO):
                client = scope.get("client")
                http_request = {  # Cloud Logging's HttpRequest (used by the JSON format)
                    "requestMethod": method,
                    "requestUrl": scope["path"],
                    "status": status,
                    "latency": f"{seconds:.6f}s",
                    "userAgent": user_agent.decode("latin-1"),
                    "remoteIp": client[0] if client else "",
                    "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                }
                trace = parse_trace(cloud_trace.decode("latin-1"), traceparent.decode("latin-1"))
                access_logger.info(
                    "method=%s route=%s status=%d latency_ms=%.2f request_id=%s model_version=%s",
                    method,
                    route,
                    status,
                    seconds * 1000.0,
                    rid,
                    state.get("model_version", "-"),
                    extra={"http_request": http_request, "request_id": rid, "trace": trace},
                )
