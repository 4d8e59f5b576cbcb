"""Hostile and broken requests: each gets a problem with the right 4xx status, never a 5xx."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.network

LIMIT = 1024 * 1024  # max_body_bytes of the test server


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header announces width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


GOOD = np.zeros((28, 28), dtype=np.uint8).tolist()
JPEG_TRUNCATED = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 40
)


def check_problem(response: httpx.Response, status: int, *phrases: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    assert body["type"].startswith(("urn:fmnist:problem:", "about:blank"))
    for phrase in phrases:
        assert phrase in body["detail"], body["detail"]
    return body


CASES: list[tuple[str, str, dict[str, Any], int, tuple[str, ...]]] = [
    # (id, path, httpx request kwargs, status, phrases in detail)
    (
        "text-plain",
        "/v1/predict",
        {"content": b"hi", "headers": {"content-type": "text/plain"}},
        415,
        ("text/plain", "multipart/form-data"),
    ),
    ("no-content-type", "/v1/predict", {"content": b"\x00\x01"}, 415, ("no content type",)),
    (
        "image-body-on-batch",
        "/v1/predict/batch",
        {"content": b"x", "headers": {"content-type": "image/png"}},
        415,
        ("image/png",),
    ),
    (
        "empty-json",
        "/v1/predict",
        {"content": b"", "headers": {"content-type": "application/json"}},
        400,
        ("empty",),
    ),
    (
        "empty-multipart",
        "/v1/predict",
        {"content": b"", "headers": {"content-type": "multipart/form-data; boundary=x"}},
        400,
        ("empty",),
    ),
    ("empty-no-type", "/v1/predict", {"content": b""}, 400, ("empty",)),
    (
        "not-json",
        "/v1/predict",
        {"content": b"{instances: oops", "headers": {"content-type": "application/json"}},
        400,
        ("not valid JSON",),
    ),
    ("json-not-object", "/v1/predict", {"json": [1, 2, 3]}, 422, ("body",)),
    ("no-instances", "/v1/predict", {"json": {"images": []}}, 422, ("body.instances",)),
    ("instances-not-list", "/v1/predict", {"json": {"instances": "abc"}}, 422, ("body.instances",)),
    ("instances-empty", "/v1/predict", {"json": {"instances": []}}, 422, ("body.instances",)),
    (
        "27-rows",
        "/v1/predict",
        {"json": {"instances": [GOOD, GOOD[:27]]}},
        400,
        ("instance 1", "27 rows"),
    ),
    (
        "783-values",
        "/v1/predict/batch",
        {"json": {"instances": [[0] * 783]}},
        400,
        ("instance 0", "783 values"),
    ),
    (
        "value-300",
        "/v1/predict/batch",
        {"json": {"instances": [GOOD, GOOD, [[0] * 27 + [300], *GOOD[1:]]]}},
        400,
        ("instance 2", "300", "0-255"),
    ),
    (
        "negative",
        "/v1/predict",
        {"json": {"instances": [[-1] + [0] * 783]}},
        400,
        ("instance 0", "-1"),
    ),
    (
        "string-value",
        "/v1/predict",
        {"json": {"instances": [["a"] * 784]}},
        400,
        ("instance 0", "'a'"),
    ),
    ("bool-value", "/v1/predict", {"json": {"instances": [[True] * 784]}}, 400, ("instance 0",)),
    (
        "ragged-row",
        "/v1/predict",
        {"json": {"instances": [[[0] * 28] * 27 + [[0] * 5]]}},
        400,
        ("instance 0", "row 27"),
    ),
    ("number-instance", "/v1/predict", {"json": {"instances": [7]}}, 400, ("instance 0",)),
    (
        "b64-not-base64",
        "/v1/predict",
        {"json": {"instances": [{"b64": "***"}]}},
        400,
        ("instance 0", "base64"),
    ),
    (
        "b64-missing",
        "/v1/predict",
        {"json": {"instances": [{"data": "x"}]}},
        400,
        ("instance 0", "b64"),
    ),
    (
        "b64-corrupt",
        "/v1/predict/batch",
        {"json": {"instances": [{"b64": base64.b64encode(JPEG_TRUNCATED).decode()}]}},
        400,
        ("instance 0", "JPEG"),
    ),
    (
        "b64-pdf",
        "/v1/predict",
        {"json": {"instances": [{"b64": base64.b64encode(b"%PDF-1.7 ...").decode()}]}},
        415,
        ("instance 0", "PDF"),
    ),
    (
        "corrupt-jpeg",
        "/v1/predict",
        {"files": {"file": ("x.jpg", JPEG_TRUNCATED, "image/jpeg")}},
        400,
        ("x.jpg", "JPEG"),
    ),
    (
        "random-bytes",
        "/v1/predict",
        {"files": {"file": ("x.png", b"\x13\x37" * 100, "image/png")}},
        415,
        ("x.png", "not a supported image"),
    ),
    (
        "empty-file",
        "/v1/predict",
        {"files": {"file": ("x.png", b"", "image/png")}},
        400,
        ("x.png", "empty"),
    ),
    (
        "bomb",
        "/v1/predict",
        {"files": {"file": ("bomb.png", bomb_png(), "image/png")}},
        413,
        ("bomb.png", "pixels"),
    ),
    (
        "bomb-b64",
        "/v1/predict",
        {"json": {"instances": [{"b64": base64.b64encode(bomb_png(9000, 9000)).decode()}]}},
        413,
        ("instance 0", "pixels"),
    ),
    (
        "missing-file",
        "/v1/predict",
        {"files": {"image": ("x.png", b"x", "image/png")}},
        422,
        ("'file'",),
    ),
    (
        "file-as-text",
        "/v1/predict",
        {"files": {"file": (None, b"not a file")}},
        422,
        ("file upload",),
    ),
    (
        "urlencoded",
        "/v1/predict",
        {"data": {"file": "x"}},
        415,
        ("application/x-www-form-urlencoded",),
    ),
    (
        "two-files-on-single",
        "/v1/predict",
        {"files": [("file", ("a.png", b"a", "image/png")), ("file", ("b.png", b"b", "image/png"))]},
        422,
        ("/v1/predict/batch",),
    ),
    (
        "no-boundary",
        "/v1/predict",
        {"content": b"abc", "headers": {"content-type": "multipart/form-data"}},
        400,
        (),
    ),
    ("bad-model-ref", "/v1/predict?model=../etc", {"json": {"instances": [GOOD]}}, 422, ("model",)),
    (
        "bad-return-image",
        "/v1/predict?return_image=maybe",
        {"json": {"instances": [GOOD]}},
        422,
        ("return_image",),
    ),
    (  # found by the fuzzer: any other word used to mean "false"
        "bad-return-image-form-field",
        "/v1/predict",
        {
            "files": {"file": ("x.png", png(np.zeros((28, 28), np.uint8)), "image/png")},
            "data": {"return_image": "maybe"},
        },
        422,
        ("return_image",),
    ),
]


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "phrases"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_request_gets_a_problem(
    client: httpx.Client, path: str, kwargs: dict[str, Any], status: int, phrases: tuple[str, ...]
) -> None:
    check_problem(client.post(path, **kwargs), status, *phrases)


def test_validation_problem_lists_errors(client: httpx.Client) -> None:
    body = check_problem(client.post("/v1/predict", json={"instances": "x"}), 422)
    assert body["type"] == "urn:fmnist:problem:validation-error"
    assert body["errors"][0]["loc"] == "body.instances"


def test_body_over_the_limit_by_content_length(client: httpx.Client) -> None:
    payload = b"\x00" * (LIMIT + 1)
    response = client.post("/v1/predict", files={"file": ("big.png", payload, "image/png")})
    body = check_problem(response, 413, "exceeds the limit", f"{LIMIT:,}")
    assert body["type"] == "urn:fmnist:problem:body-too-large"


def test_body_over_the_limit_while_streaming(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for _ in range(40):
            yield b"[" + b"0," * 32_000 + b"0]"

    response = client.post(
        "/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    check_problem(response, 413, "exceeds the limit")


def test_too_many_batch_instances(client: httpx.Client) -> None:
    response = client.post("/v1/predict/batch", json={"instances": [[]] * 1001})
    body = check_problem(response, 413, "1,001 instances", "1,000")
    assert body["limit"] == 1000 and "extensions" not in body  # a member, as RFC 9457 has it
    files = [("files", (f"{i}.png", b"x", "image/png")) for i in range(1001)]
    check_problem(client.post("/v1/predict/batch", files=files), 413, "1,000")
    many = [("files", (f"{i}.png", b"x", "image/png")) for i in range(1100)]
    check_problem(client.post("/v1/predict/batch", files=many), 413, "too many files")


def test_unknown_route_and_wrong_method(client: httpx.Client) -> None:
    check_problem(client.get("/v1/nothing-here"), 404, "/v1/nothing-here")
    check_problem(client.get("/v1/predict"), 405, "GET", "/v1/predict")
    check_problem(client.get("/nothing.css"), 404)


def test_bad_query_values(client: httpx.Client) -> None:
    check_problem(client.get("/v1/samples", params={"n": 0}), 422, "n")
    check_problem(client.get("/v1/samples", params={"n": "many"}), 422, "n")
    check_problem(client.get("/v1/samples", params={"seed": -1}), 422, "seed")


@pytest.mark.parametrize("text", ["+0.0", "1.0", "1_000", " 3", "3 "])
def test_integer_query_values_must_be_plain_integers(client: httpx.Client, text: str) -> None:
    """Found by the fuzzer: pydantic read these as integers although the schema says integer."""
    check_problem(client.get("/v1/samples", params={"seed": text}), 422, "seed")
    check_problem(client.get("/v1/samples", params={"n": text}), 422, "n")
    explain = client.post("/v1/explain", params={"class_id": text}, json={"instances": [GOOD]})
    check_problem(explain, 422, "class_id")
    assert client.get("/v1/samples", params={"n": "3", "seed": "7"}).status_code == 200


def test_server_still_healthy_after_abuse(client: httpx.Client) -> None:
    response = client.post("/v1/predict", json={"instances": [GOOD]})
    assert response.status_code == 200
    text = client.get("/metrics").text
    assert 'status="500"' not in text
