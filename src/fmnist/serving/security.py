"""Access control of the API: who may call which route, how often, and the headers of every
response (``security.*`` settings, :mod:`fmnist.security`).

Each request's route maps to a scope (``predict``, ``explain``, ``feedback``, ``admin``, or
none for the UI, health checks and docs). Credentials are ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``: an API key of the key store, or ``serving.admin_token`` (every scope).

* A credential that is not valid: 401, whatever the route (the same answer for a malformed,
  unknown or revoked key: nothing tells which).
* No credential where the policy needs one: 401 with ``WWW-Authenticate``; a valid key
  without the route's scope: 403. Admin routes with no admin credential configured at all:
  404 (the admin API is off).
* Then the route's rate limit for the key (or, without a key, the client address): 429 with
  ``Retry-After``.

The scopes of the request are kept in ``scope["state"]["scopes"]`` for the routes that care
(``?model=`` of a gate-failed version needs ``admin``).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmnist.config import SecuritySettings, ServingSettings
from fmnist.security.keys import SCOPES, KeyStore
from fmnist.security.limits import RateLimiter
from fmnist.serving.problems import problem_response

logger = logging.getLogger("fmnist.serving")

ALL_SCOPES = frozenset(SCOPES)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
UI_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
CARD_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"
DOCS = ("/docs", "/redoc")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def route_scope(
    method: str, path: str, metrics_need_key: bool, platform_predict: str | None = None
) -> str | None:
    """The scope a request needs (None: open); ``platform_predict`` is a platform's prediction
    route (``serving.platform_predict_route``)."""
    if path.startswith("/v1/admin/"):
        return "admin"
    if path in ("/v1/predict", "/v1/predict/batch") or path == platform_predict:
        return "predict"
    if path == "/v1/explain":
        return "explain"
    if path == "/v1/feedback":
        return "feedback"
    if path.startswith(("/v1/models", "/v1/monitoring")):
        return "predict"  # read access: versions, model cards, the monitoring summary
    if path == "/metrics" and metrics_need_key:
        return "admin"
    return None


def _credential(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class SecurityMiddleware:
    """Authentication, scopes, rate limits and security headers (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        security: SecuritySettings,
        serving: ServingSettings,
        keys: KeyStore,
    ) -> None:
        """Enforce ``security`` for a server bound to ``serving.host``."""
        self.app = app
        self.keys = keys
        self.platform_predict = serving.platform_predict_route
        self.admin_token = serving.admin_token.get_secret_value() if serving.admin_token else ""
        loopback = is_loopback(serving.host)
        self.open_scopes = (
            frozenset()
            if security.auth == "on" or (security.auth == "auto" and not loopback)
            else frozenset({"predict", "explain", "feedback"})
        )
        if security.auth == "off" and not loopback:
            logger.warning(
                "security.auth is off on %s: prediction routes need no key", serving.host
            )
        limited = security.rate_limit == "on" or (security.rate_limit == "auto" and not loopback)
        self.limiter = RateLimiter(security.rate_limits_per_minute) if limited else None
        self.metrics_need_key = (
            security.metrics_require_key
            if security.metrics_require_key is not None
            else not loopback
        )

    def _identify(self, credential: str) -> tuple[str, frozenset[str]] | None:
        """``(identity, scopes)`` of a valid credential, else None."""
        if self.admin_token and hmac.compare_digest(credential.encode(), self.admin_token.encode()):
            return "admin-token", ALL_SCOPES
        record = self.keys.verify(credential)
        return None if record is None else (f"key:{record.key_id}", frozenset(record.scopes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then add the headers to its response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        needed = route_scope(scope["method"], path, self.metrics_need_key, self.platform_predict)
        credential = _credential(scope["headers"])
        client = scope.get("client") or ("unknown", 0)
        identity, scopes = f"client:{client[0]}", frozenset[str]()
        state = scope.setdefault("state", {})
        challenge = {"WWW-Authenticate": 'Bearer realm="fmnist"'}
        problem = None
        if needed == "admin" and not self.admin_token and not self.keys.has_scope("admin"):
            problem = problem_response(
                scope,
                404,
                "the admin API is disabled: create an admin key (fmnist keys create "
                "--scope admin) or set serving.admin_token",
                slug="admin-disabled",
            )
        elif credential is not None:
            found = self._identify(credential)
            if found is None:
                problem = problem_response(
                    scope, 401, "missing or invalid API key", slug="unauthorized", headers=challenge
                )
            else:
                identity, scopes = found
        if problem is None and needed is not None and needed not in scopes:
            if credential is None and needed not in self.open_scopes:
                problem = problem_response(
                    scope,
                    401,
                    "missing or invalid API key: send 'Authorization: Bearer <key>' or "
                    "'X-API-Key: <key>'",
                    slug="unauthorized",
                    headers=challenge,
                )
            elif credential is not None:
                problem = problem_response(
                    scope, 403, f"this key does not have the {needed!r} scope", slug="forbidden"
                )
        if problem is None and needed is not None and self.limiter is not None:
            client = scope.get("client") or ("unknown", 0)
            identity = f"key:{credential[:20]}" if credential and scopes else f"client:{client[0]}"
            wait = self.limiter.take(needed, identity)
            if wait > 0:
                problem = problem_response(
                    scope,
                    429,
                    f"rate limit of the {needed!r} scope reached; retry in {math.ceil(wait)} s",
                    slug="rate-limited",
                    headers={"Retry-After": str(math.ceil(wait))},
                )
        state["scopes"] = scopes
        send_with_headers = self._with_headers(send, path)
        if problem is not None:
            await problem(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _with_headers(send: Send, path: str) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                kind = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if b"content-security-policy" not in present and not path.startswith(DOCS):
                    if kind.startswith(b"text/html"):
                        policy = CARD_CSP if path.startswith("/v1/") else UI_CSP
                    else:
                        policy = API_CSP
                    headers.append((b"content-security-policy", policy.encode()))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        return wrapped
