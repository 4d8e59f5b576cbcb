"""Request bodies to model inputs: multipart uploads, JSON instances and raw image bodies.

Accepted bodies (the content type decides):

* ``multipart/form-data``: field ``file`` (``/v1/predict``: exactly one) or repeated ``file`` /
  ``files`` fields (``/v1/predict/batch``); an optional ``return_image`` form field;
* ``application/json``: ``{"instances": [...], "return_image": false}`` where each instance is
  28 rows of 28 numbers, 784 numbers (0-255), or ``{"b64": "<base64 image bytes>"}`` (the
  Vertex AI / KServe V1 convention);
* ``image/*``: the raw bytes of one image (``/v1/predict`` only).

Where and how images are decoded (on the event loop, in a thread, one heavy image at a time)
and which are refused from their header alone is :mod:`fmnist.serving.decode_guard`'s policy.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from fmnist.errors import InvalidImageError
from fmnist.imaging.model_input import pixels_from_instance
from fmnist.imaging.preprocess import (
    DEFAULT_SEGMENTATION,
    PreprocessResult,
    Segmentation,
    preprocess_bytes,
)
from fmnist.serving.decode_guard import DecodeGuard
from fmnist.serving.problems import ProblemError

UInt8Array = npt.NDArray[np.uint8]

INLINE_JSON_BYTES = 64 * 1024
"""JSON bodies of pixel lists up to this size are converted on the event loop."""
JSON_TYPES = ("application/json",)
MULTIPART = "multipart/form-data"
ACCEPTED = "multipart/form-data, application/json or image/*"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class ModelInputs:
    """The parsed request: model inputs and, for images, what preprocessing found."""

    pixels: UInt8Array
    """``(N, 28, 28)`` uint8."""
    details: Sequence[PreprocessResult | None]
    """Per input: the preprocessing result for an image, None for a pixel instance."""
    return_image: bool


class _Envelope(BaseModel):
    """The JSON request: Vertex AI / KServe V1 ``instances`` plus fmnist options."""

    model_config = ConfigDict(extra="ignore")

    instances: list[Any] = Field(min_length=1)
    return_image: bool = False


def media_type(request: Request) -> str:
    """The request's media type, lower case, without parameters."""
    raw = request.headers.get("content-type", "")
    return raw.partition(";")[0].strip().lower()


def _too_many(count: int, limit: int, what: str) -> ProblemError:
    return ProblemError(
        413,
        f"{count:,} {what} exceed the limit of {limit:,} per request",
        slug="too-many-instances",
        limit=limit,
    )


def _image(
    data: bytes, max_pixels: int, where: str, segmentation: Segmentation = DEFAULT_SEGMENTATION
) -> PreprocessResult:
    try:
        return preprocess_bytes(data, max_pixels=max_pixels, segmentation=segmentation)
    except InvalidImageError as exc:
        raise InvalidImageError(exc.kind, f"{where}: {exc}") from exc


def _b64_bytes(instance: dict[str, Any], index: int) -> bytes:
    encoded = instance.get("b64")
    if not isinstance(encoded, str):
        raise InvalidImageError(
            "invalid_instance",
            f"instance {index}: expected an object with a string member 'b64', "
            f"got keys {sorted(instance)[:5]}",
        )
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImageError(
            "invalid_instance", f"instance {index}: 'b64' is not valid base64 ({exc})"
        ) from exc


def _instances(
    instances: Sequence[Any], max_pixels: int, segmentation: Segmentation = DEFAULT_SEGMENTATION
) -> tuple[UInt8Array, list[PreprocessResult | None]]:
    """Model inputs of JSON instances: pixel lists, or image bytes (decoded ``b64``)."""
    pixels = np.empty((len(instances), 28, 28), dtype=np.uint8)
    details: list[PreprocessResult | None] = []
    for i, instance in enumerate(instances):
        if isinstance(instance, bytes):
            result = _image(instance, max_pixels, f"instance {i}", segmentation)
            pixels[i] = result.pixels
            details.append(result)
        else:
            pixels[i] = pixels_from_instance(instance, index=i)
            details.append(None)
    return pixels, details


def _images(
    blobs: Sequence[tuple[str, bytes]],
    max_pixels: int,
    segmentation: Segmentation = DEFAULT_SEGMENTATION,
) -> tuple[UInt8Array, list[PreprocessResult | None]]:
    pixels = np.empty((len(blobs), 28, 28), dtype=np.uint8)
    details: list[PreprocessResult | None] = []
    for i, (where, data) in enumerate(blobs):
        result = _image(data, max_pixels, where, segmentation)
        pixels[i] = result.pixels
        details.append(result)
    return pixels, details


async def _json_inputs(
    request: Request,
    *,
    max_instances: int,
    guard: DecodeGuard,
    return_image: bool,
    segmentation: Segmentation,
) -> ModelInputs:
    body = await request.body()
    if not body.strip():
        raise ProblemError(
            400, 'request body is empty: send {"instances": [...]}', slug="empty-body"
        )
    try:
        envelope = _Envelope.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise RequestValidationError(
            [{**e, "loc": ("body", *e.get("loc", ()))} for e in errors]
        ) from None
    count = len(envelope.instances)
    if count > max_instances:
        raise _too_many(count, max_instances, "instances")
    # base64 is decoded here (about 1 GB/s), so the image headers are checked before decoding
    items = [
        _b64_bytes(item, i) if isinstance(item, dict) else item
        for i, item in enumerate(envelope.instances)
    ]
    blobs = [(f"instance {i}", item) for i, item in enumerate(items) if isinstance(item, bytes)]
    wants_image = return_image or envelope.return_image
    if blobs:
        pixels, details = await guard.decode(
            blobs, _instances, items, guard.max_pixels, segmentation
        )
    elif len(body) > INLINE_JSON_BYTES:
        pixels, details = await run_in_threadpool(_instances, items, guard.max_pixels)
    else:
        pixels, details = _instances(items, guard.max_pixels)
    return ModelInputs(pixels, details, wants_image)


def _form_flag(value: Any) -> bool:
    """The ``return_image`` form field: absent, a true or a false word; else 422."""
    if value is None:
        return False
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ProblemError(
        422,
        "form field 'return_image' must be true or false",
        slug="validation-error",
        errors=[{"loc": "body.return_image", "msg": "not a boolean", "type": "bool_parsing"}],
    )


async def _multipart_inputs(
    request: Request,
    *,
    batch: bool,
    max_instances: int,
    guard: DecodeGuard,
    return_image: bool,
    segmentation: Segmentation,
) -> ModelInputs:
    form = await request.form(max_files=max_instances + 1, max_fields=max_instances + 16)
    try:
        fields = ("file", "files") if batch else ("file",)
        values = [(name, v) for name in fields for v in form.getlist(name)]
        if not values:
            expected = "'file' (or 'files')" if batch else "'file'"
            raise ProblemError(
                422,
                f"multipart body has no {expected} field: send the image as a file field "
                f"named {expected}",
                slug="missing-file",
                errors=[{"loc": "body.file", "msg": "Field required", "type": "missing"}],
            )
        if len(values) > max_instances:
            raise _too_many(len(values), max_instances, "files")
        if not batch and len(values) > 1:
            raise ProblemError(
                422,
                f"{len(values)} 'file' fields: /v1/predict takes one image; "
                "use /v1/predict/batch for several",
                slug="too-many-files",
            )
        blobs: list[tuple[str, bytes]] = []
        for i, (name, value) in enumerate(values):
            if not isinstance(value, UploadFile):
                raise ProblemError(
                    422,
                    f"field '{name}' must be a file upload (multipart part with a filename), "
                    "not a text value",
                    slug="not-a-file",
                )
            data = await value.read()
            label = f"file {i} ({value.filename})" if batch else f"file {value.filename!r}"
            blobs.append((label, data))
        wants_image = _form_flag(form.get("return_image")) or return_image
    finally:
        await form.close()
    pixels, details = await guard.decode(blobs, _images, blobs, guard.max_pixels, segmentation)
    return ModelInputs(pixels, details, wants_image)


async def read_inputs(
    request: Request,
    *,
    batch: bool,
    max_instances: int,
    guard: DecodeGuard,
    return_image: bool,
    segmentation: Segmentation = DEFAULT_SEGMENTATION,
) -> ModelInputs:
    """Parse the request body into model inputs (see the module docstring).

    Photos are segmented with ``segmentation`` (``serving.segmentation``).

    Raises :class:`ProblemError` (415 for another content type, 400 for an empty body, 413 for
    too many instances or files, 422 for a body of the wrong shape) or
    :class:`InvalidImageError` naming the instance or file.
    """
    kind = media_type(request)
    if kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json")):
        return await _json_inputs(
            request,
            max_instances=max_instances,
            guard=guard,
            return_image=return_image,
            segmentation=segmentation,
        )
    if kind == MULTIPART:
        if request.headers.get("content-length") == "0":
            raise ProblemError(400, "request body is empty", slug="empty-body")
        return await _multipart_inputs(
            request,
            batch=batch,
            max_instances=max_instances,
            guard=guard,
            return_image=return_image,
            segmentation=segmentation,
        )
    if kind.startswith("image/") and not batch:
        data = await request.body()
        blob = [("request body", data)]
        result = await guard.decode(
            blob, _image, data, guard.max_pixels, "request body", segmentation
        )
        return ModelInputs(result.pixels[None], [result], return_image)
    if request.headers.get("content-length") == "0" and not kind:
        raise ProblemError(400, "request body is empty", slug="empty-body")
    shown = kind or "no content type"
    accepted = "multipart/form-data or application/json" if batch else ACCEPTED
    raise ProblemError(
        415,
        f"unsupported content type {shown!r}: send {accepted}",
        slug="unsupported-media-type",
        headers={"Accept-Post": accepted.replace(" or ", ", ")},
    )
