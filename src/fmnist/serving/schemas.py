"""Shapes of the HTTP API for the OpenAPI document (the routes build their JSON directly)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, BeforeValidator, Field

from fmnist import IMAGE_SIZE

_DECIMAL = re.compile(r"-?[0-9]{1,20}")


def _decimal_integer(value: Any) -> Any:
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise ValueError("must be a decimal integer")
    return value


DecimalInteger = BeforeValidator(_decimal_integer)
"""For integer query parameters (after their ``Query``): refuses text that pydantic would
otherwise read as an integer although it is none (``+0.0``, ``1_000``, `` 3``)."""


class Problem(BaseModel):
    """RFC 9457 problem details (media type ``application/problem+json``)."""

    type: str = Field(description="urn:fmnist:problem:<slug>, or about:blank")
    title: str
    status: int
    detail: str
    instance: str = Field(description="the request path")
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = Field(None, description="validation problems")


class Preprocessing(BaseModel):
    """What photo preprocessing found (image inputs only)."""

    mode: str = Field(description="fashion_mnist (passed through) or photo")
    segmentation: str = Field(description="grabcut, colour, or none (passed through)")
    inverted: bool
    bbox: list[int] | None = Field(description="garment box (left, top, right, bottom)")
    background_level: float
    foreground_fraction: float


class Prediction(BaseModel):
    """The answer for one image."""

    class_id: int | None = Field(description="None when the answer is unknown")
    label: str = Field(description='class name, or "unknown"')
    probabilities: list[float] = Field(description="calibrated probability of each class")
    confidence: float | None = Field(description="top calibrated probability")
    energy: float | None = Field(description="energy score (higher: less like the training data)")
    reasons: list[str] = Field(description="why the answer is unknown (empty otherwise)")
    top_class_id: int = Field(description="most probable class, even when unknown")
    top_label: str
    path: str = Field(
        description="fashion-mnist (28x28 pixels or a Fashion-MNIST-like image) or photo"
    )
    model_name: str = Field(description="registered model that answered this input")
    model_version: int
    request_id: str = Field(
        description="id of this prediction in the prediction log (the request's X-Request-ID, "
        "with ':<index>' when the request has several): send it to POST /v1/feedback"
    )
    preprocessing: Preprocessing | None = None
    model_input_png: str | None = Field(
        None, description="base64 28x28 PNG the model saw (with return_image=true)"
    )


class PredictResponse(BaseModel):
    """Answers to ``POST /v1/predict`` and ``POST /v1/predict/batch``."""

    predictions: list[Prediction]
    model_name: str = Field(
        description="the model that answered (for a batch mixing both paths: the model of the "
        "fashion-mnist path; each prediction names its own)"
    )
    model_version: int
    path: str = Field(description="fashion-mnist, photo, or mixed (a batch of both)")
    fallback: str | None = Field(
        None,
        description="why photos were answered by the default model although "
        "serving.photo_model is set (it is not registered or could not be loaded); else null",
    )
    request_id: str


class ModelsResponse(BaseModel):
    """Registered versions and what this server has loaded."""

    registered_model: str
    default_ref: str
    served: dict[str, Any] | None
    photo_model: dict[str, Any] | None = Field(
        None, description="serving.photo_model and the version it resolves to, if loaded"
    )
    loaded: list[dict[str, Any]]
    versions: list[dict[str, Any]]


class ReloadResponse(BaseModel):
    """Outcome of ``POST /v1/admin/reload``."""

    reloaded: bool
    previous_version: int | None
    model_name: str
    model_version: int


class Sample(BaseModel):
    """One Fashion-MNIST test image."""

    index: int = Field(description="row in the official test set")
    label: str
    class_id: int
    png_b64: str = Field(description=f"base64 {IMAGE_SIZE}x{IMAGE_SIZE} grey PNG")


class SamplesResponse(BaseModel):
    """Test images for the web UI."""

    snapshot_id: str
    samples: list[Sample]


class Status(BaseModel):
    """Liveness / readiness."""

    status: str
    model_name: str | None = None
    model_version: int | None = None


EXAMPLE_PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAAHklEQVR42mNgGEqAEc46AWdZwBhM+HSOSg5GyaEFAKcsASBLq2xR"
    "AAAAAElFTkSuQmCC"
)
"""A 28x28 grey PNG (a light rectangle on black): the request example of the predict routes."""

_INSTANCE = {
    "oneOf": [
        {
            "type": "array",
            "items": {"type": "array", "items": {"type": "number"}},
            "minItems": IMAGE_SIZE,
            "maxItems": IMAGE_SIZE,
            "description": "28 rows of 28 pixel values 0-255",
        },
        {
            "type": "array",
            "items": {"type": "number", "minimum": 0, "maximum": 255},
            "minItems": IMAGE_SIZE * IMAGE_SIZE,
            "maxItems": IMAGE_SIZE * IMAGE_SIZE,
            "description": "784 pixel values 0-255, row by row",
        },
        {
            "type": "object",
            "properties": {"b64": {"type": "string", "format": "byte"}},
            "required": ["b64"],
            "description": "an image file (JPEG, PNG, ...) in base64",
        },
    ]
}
_JSON_BODY = {
    "schema": {
        "type": "object",
        "required": ["instances"],
        "properties": {
            "instances": {"type": "array", "items": _INSTANCE, "minItems": 1},
            "return_image": {"type": "boolean", "default": False},
        },
    },
    "example": {"instances": [{"b64": EXAMPLE_PNG_B64}]},
}


def request_body(*, batch: bool) -> dict[str, Any]:
    """The ``requestBody`` of the predict routes (they read the body themselves)."""
    files = (
        {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
            "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
        }
        if batch
        else {"file": {"type": "string", "format": "binary"}}
    )
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {**files, "return_image": {"type": "boolean"}},
                **({} if batch else {"required": ["file"]}),
            }
        },
        "application/json": _JSON_BODY,
    }
    if not batch:
        content["image/*"] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": True, "content": content}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem details with these status codes."""
    return {
        status: {
            "model": Problem,
            "content": {"application/problem+json": {}},
            "description": "problem details",
        }
        for status in statuses
    }


def problem_media_types(spec: dict[str, Any]) -> dict[str, Any]:
    """Move problem schemas from ``application/json`` to ``application/problem+json``.

    FastAPI documents a response model under the route's media type; problem responses are
    declared with an empty ``application/problem+json`` entry and fixed up here.
    """
    for methods in spec.get("paths", {}).values():
        for operation in methods.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if "application/problem+json" in content and "application/json" in content:
                    content["application/problem+json"] = content.pop("application/json")
    return spec


_PROBLEM = {
    "description": "problem details",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def layer_problems(
    spec: dict[str, Any], scope_of: Callable[[str, str], str | None]
) -> dict[str, Any]:
    """Document the problems the middleware answers before a route runs, on every operation.

    401 (an invalid credential, on every route; no credential where one is needed); 403 (a key
    without the scope) and 429 (rate limit) where ``scope_of(method, path)`` names a scope;
    400 (malformed JSON) and 413 (body limit) where there is a request body.
    """
    spec.setdefault("components", {}).setdefault("schemas", {}).setdefault(
        "Problem", Problem.model_json_schema()
    )
    for path, methods in spec.get("paths", {}).items():
        for method, operation in methods.items():
            statuses = [401]
            if scope_of(method.upper(), path) is not None:
                statuses += [403, 429]
            if "requestBody" in operation:
                statuses += [413]
                if "application/json" in operation["requestBody"].get("content", {}):
                    statuses += [400]
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses.setdefault(str(status), _PROBLEM)
            operation["responses"] = dict(sorted(responses.items()))
    return spec
