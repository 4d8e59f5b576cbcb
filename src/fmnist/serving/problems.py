"""RFC 9457 problem details: the one error format of every fmnist HTTP response.

Every error answer has the media type ``application/problem+json`` and a body with ``type``,
``title``, ``status``, ``detail``, ``instance`` (the request path) and ``request_id``, plus
extension members such as ``errors`` (validation problems). A client error is never a 5xx;
an unexpected failure is a 500 whose body names the request id but never the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from fmnist.errors import InvalidImageError

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:fmnist:problem:"
"""Problem types are URNs ``urn:fmnist:problem:<slug>``; plain HTTP errors use about:blank."""

logger = logging.getLogger("fmnist.serving")

IMAGE_STATUS: Mapping[str, tuple[int, str]] = {
    "unsupported": (415, "unsupported-image"),
    "too_large": (413, "image-too-large"),
    "corrupt": (400, "corrupt-image"),
    "empty": (400, "empty-image"),
    "invalid_instance": (400, "invalid-instance"),
}
"""``InvalidImageError.kind`` -> (status, problem type slug)."""

_MAX_LISTED_ERRORS = 20


class ProblemResponse(JSONResponse):
    """A JSON response with the ``application/problem+json`` media type."""

    media_type = PROBLEM_JSON


class ProblemError(Exception):
    """An expected HTTP error raised by a route and rendered as problem details."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        """Describe the problem; ``slug`` names its type (``urn:fmnist:problem:<slug>``)."""
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.title = title
        self.headers = dict(headers or {})
        self.extensions = extensions


class BodyTooLargeError(Exception):
    """The request body grew past ``max_body_bytes`` while it was being read."""

    def __init__(self, limit: int) -> None:
        """Record the limit that was exceeded."""
        super().__init__(f"request body exceeds the limit of {limit:,} bytes")
        self.limit = limit


def problem_body(
    scope: Scope,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem details object for a request (``scope``)."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug if slug else "about:blank",
        "title": title or _phrase(status),
        "status": status,
        "detail": detail,
        "instance": scope.get("path", ""),
    }
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    if extensions:
        body.update(extensions)
    return body


def problem_response(
    scope: Scope,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> ProblemResponse:
    """A ready-to-send problem details response (its slug is kept in the request's state, so
    the metrics can count rejected inputs by kind)."""
    scope.setdefault("state", {})["problem"] = slug or _phrase(status).lower().replace(" ", "-")
    body = problem_body(scope, status, detail, slug=slug, title=title, extensions=extensions)
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _location(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_problem(scope: Scope, errors: Sequence[Mapping[str, Any]]) -> ProblemResponse:
    """400 for a body that is not JSON, else 422 listing each problem (without its input)."""
    for error in errors:
        if error.get("type") == "json_invalid":
            message = str(error.get("ctx", {}).get("error", error.get("msg", "")))
            return problem_response(
                scope,
                400,
                f"request body is not valid JSON ({message})",
                slug="malformed-json",
            )
    listed = [
        {"loc": _location(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in errors[:_MAX_LISTED_ERRORS]
    ]
    summary = "; ".join(f"{e['loc'] or 'body'}: {e['msg']}" for e in listed[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return problem_response(
        scope,
        422,
        f"request validation failed: {summary}{more}",
        slug="validation-error",
        extensions={"errors": listed},
    )


def image_problem(scope: Scope, error: InvalidImageError) -> ProblemResponse:
    """The status for an unusable image or pixel instance: 415, 413 or 400 by its kind."""
    status, slug = IMAGE_STATUS.get(error.kind, (400, "invalid-image"))
    return problem_response(scope, status, str(error), slug=slug, extensions={"kind": error.kind})


def internal_error(scope: Scope) -> ProblemResponse:
    """The 500 answer: no exception text, only the request id to quote."""
    request_id = scope.get("state", {}).get("request_id", "unknown")
    return problem_response(
        scope,
        500,
        f"internal server error; quote request id {request_id} when reporting it",
        slug="internal-error",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error the app can raise as problem details."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        """A route's expected error."""
        assert isinstance(exc, ProblemError)
        return problem_response(
            request.scope,
            exc.status,
            exc.detail,
            slug=exc.slug,
            title=exc.title,
            headers=exc.headers,
            extensions=exc.extensions,
        )

    async def on_validation(request: Request, exc: Exception) -> Response:
        """Malformed JSON (400) or a body/query of the wrong shape (422)."""
        assert isinstance(exc, RequestValidationError)
        return validation_problem(request.scope, list(exc.errors()))

    async def on_image(request: Request, exc: Exception) -> Response:
        """An unusable image or pixel instance."""
        assert isinstance(exc, InvalidImageError)
        return image_problem(request.scope, exc)

    async def on_body_too_large(request: Request, exc: Exception) -> Response:
        """A body that grew past the limit while streaming."""
        assert isinstance(exc, BodyTooLargeError)
        return problem_response(
            request.scope,
            413,
            str(exc),
            slug="body-too-large",
            headers={"Connection": "close"},
            extensions={"limit_bytes": exc.limit},
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        """Starlette's HTTP errors (unknown path, wrong method, bad multipart)."""
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        detail = str(exc.detail)
        if status == 404 and detail == _phrase(404):
            detail = f"no resource at {request.url.path}"
        elif status == 405 and detail == _phrase(405):
            detail = f"method {request.method} is not allowed on {request.url.path}"
        elif status == 400 and detail.startswith("Too many files"):
            status, detail = 413, f"too many files in the request ({detail})"
        return problem_response(request.scope, status, detail, headers=exc.headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        """A bug: log the traceback, answer 500 without it."""
        logger.error(
            "unhandled error request_id=%s",
            request.scope.get("state", {}).get("request_id"),
            exc_info=exc,
        )
        return internal_error(request.scope)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(InvalidImageError, on_image)
    app.add_exception_handler(BodyTooLargeError, on_body_too_large)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
