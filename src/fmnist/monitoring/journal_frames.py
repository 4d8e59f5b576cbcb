"""The binary frames of the prediction journal: one per prediction, cheap to write.

A frame is a fixed header (``struct``), the pixels, the probabilities and the text values
joined by a unit separator (U+001F)::

    magic 0xF7 | length of the rest (u32) | ts_us (i64) | model_version (i64)
    | confidence (f64) | latency_ms (f64) | pixel bytes (u16) | probability bytes (u16)
    | pixels | probabilities (little-endian f64) | texts (UTF-8)

The texts are, in order: request id, timestamp, model name, alias, arm, input kind, input
digest, predicted class, client id, photo flags (JSON) and route. An empty timestamp or digest
is derived when the frame is read (from ``ts_us``, and the SHA-256 of the pixels), so the API's
write path skips both. The API writes one frame per prediction with one ``write``; a reader
stops at a frame that is not complete yet (still being written, or cut by a crash).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fmnist.identity import digest_bytes
from fmnist.monitoring import log_schema as schema

MAGIC = 0xF7
_LEAD = struct.Struct("<BI")
_FIXED = struct.Struct("<qqddHH")
_SEPARATOR = "\x1f"
_TEXTS = 11
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DIGEST_LENGTH = 32
"""Hex digits of the input digest derived when a frame leaves it empty."""


class FrameError(ValueError):
    """Bytes that are not a journal frame."""


def encode_frame(
    *,
    request_id: str,
    ts_us: int,
    model_name: str,
    model_version: int,
    model_alias: str,
    arm: str,
    input_kind: str,
    pixels: bytes,
    probabilities: Sequence[float] | bytes,
    predicted_class: str,
    confidence: float,
    latency_ms: float,
    client_id: str,
    photo_flags: str,
    route: str,
    timestamp: str = "",
    input_digest: str = "",
) -> bytes:
    """One frame (``photo_flags`` as JSON text, see :func:`~fmnist.monitoring.log_schema.
    flags_json`; ``probabilities`` as floats or packed; see the module docstring)."""
    texts = _SEPARATOR.join(
        (
            request_id,
            timestamp,
            model_name,
            model_alias,
            arm,
            input_kind,
            input_digest,
            predicted_class,
            client_id,
            photo_flags,
            route,
        )
    )
    if texts.count(_SEPARATOR) != _TEXTS - 1:
        raise FrameError(f"a value of prediction {request_id!r} holds the separator U+001F")
    text_bytes = texts.encode("utf-8")
    packed = schema.pack_probabilities(probabilities)
    fixed = _FIXED.pack(ts_us, model_version, confidence, latency_ms, len(pixels), len(packed))
    rest = len(fixed) + len(pixels) + len(packed) + len(text_bytes)
    return b"".join((_LEAD.pack(MAGIC, rest), fixed, pixels, packed, text_bytes))


def frame_of_row(row: Sequence[Any]) -> bytes:
    """The frame of a row of :func:`~fmnist.monitoring.log_schema.make_row`."""
    values = dict(zip(schema.COLUMNS[1:], row, strict=True))
    return encode_frame(**values)


def _row(view: memoryview) -> tuple[Any, ...]:
    ts_us, version, confidence, latency, n_pixels, n_probs = _FIXED.unpack_from(view)
    start = _FIXED.size
    pixels = bytes(view[start : start + n_pixels])
    probabilities = bytes(view[start + n_pixels : start + n_pixels + n_probs])
    texts = str(view[start + n_pixels + n_probs :], "utf-8").split(_SEPARATOR)
    if len(texts) != _TEXTS or n_probs % 8:
        raise FrameError("a journal frame with the wrong number of values")
    (rid, timestamp, name, alias, arm, kind, digest, predicted, client, flags, route) = texts
    timestamp = timestamp or (_EPOCH + timedelta(microseconds=ts_us)).isoformat()
    digest = digest or digest_bytes(pixels, length=DIGEST_LENGTH)
    return schema.make_row(
        request_id=rid,
        timestamp=timestamp,
        ts_us=ts_us,
        model_name=name,
        model_version=version,
        model_alias=alias,
        arm=arm,
        input_kind=kind,
        input_digest=digest,
        pixels=pixels,
        probabilities=probabilities,
        predicted_class=predicted,
        confidence=confidence,
        latency_ms=latency,
        client_id=client,
        photo_flags=flags,
        route=route,
    )


def read_frames(data: bytes) -> tuple[list[tuple[Any, ...]], int, bool]:
    """The rows of the complete frames at the start of ``data``, the bytes they took, and
    whether reading stopped at bytes that are not a frame (not merely an incomplete one)."""
    view = memoryview(data)
    rows: list[tuple[Any, ...]] = []
    offset = 0
    while offset + _LEAD.size <= len(data):
        magic, rest = _LEAD.unpack_from(view, offset)
        if magic != MAGIC:
            return rows, offset, True
        end = offset + _LEAD.size + rest
        if end > len(data):
            break  # still being written, or cut by a crash
        try:
            rows.append(_row(view[offset + _LEAD.size : end]))
        except (FrameError, struct.error, UnicodeDecodeError):
            return rows, offset, True
        offset = end
    return rows, offset, False
