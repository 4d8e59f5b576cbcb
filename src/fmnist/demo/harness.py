"""The moving parts of the closed-loop scenario: a server process, a webhook receiver, traffic.

Everything is real: ``fmnist serve`` in its own process on a free loopback port, HTTP over
loopback, an HTTP server that receives the alert webhooks.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

Images = npt.NDArray[np.uint8]


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WebhookReceiver:
    """An HTTP server on loopback that keeps every JSON body POSTed to it."""

    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    @contextlib.contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        """Serve in a background thread for the block."""
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


@contextlib.contextmanager
def serving(config: Path, port: int, log: Path, timeout_s: float = 120) -> Iterator[httpx.Client]:
    """``fmnist serve`` with ``config`` in its own process; yields a client once it is ready."""
    env = {**os.environ, "FMNIST_CONFIG": str(config)}
    command = [
        sys.executable,
        "-m",
        "fmnist",
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/readyz").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready")
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def drifted(images: Images, *, degrees: float = 25.0, brightness: float = 0.6) -> Images:
    """The drift of the scenario: garments turned by ``degrees`` and photographed darker."""
    import cv2

    size = images.shape[1]
    matrix = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), degrees, 1.0)
    turned = np.stack(
        [cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR) for image in images]
    )
    return np.ascontiguousarray((turned.astype(np.float32) * brightness).round().astype(np.uint8))


@dataclass
class TrafficReport:
    """What a replay sent and how it was answered."""

    requests: int = 0
    failed: int = 0
    versions: dict[int, int] = field(default_factory=dict)
    arms: dict[str, int] = field(default_factory=dict)


def replay(
    http: httpx.Client,
    images: Images,
    labels: npt.NDArray[np.integer],
    *,
    feedback_labels: npt.NDArray[np.integer] | None = None,
) -> TrafficReport:
    """One request per image from a new client each, then its feedback (``feedback_labels``,
    default the true labels: a labelling bug is simulated by passing others)."""
    report = TrafficReport()
    given = labels if feedback_labels is None else feedback_labels
    for image, label in zip(images, given, strict=True):
        response = http.post(
            "/v1/predict",
            json={"instances": [image.tolist()]},
            headers={"X-Client-ID": uuid.uuid4().hex},
        )
        report.requests += 1
        if response.status_code != 200:
            report.failed += 1
            continue
        body = response.json()
        version = int(body["model_version"])
        report.versions[version] = report.versions.get(version, 0) + 1
        arm = body.get("arm", "")
        report.arms[arm] = report.arms.get(arm, 0) + 1
        sent = http.post(
            "/v1/feedback", json={"request_id": body["request_id"], "label": int(label)}
        )
        if sent.status_code not in (200, 201):
            raise RuntimeError(f"feedback refused: {sent.status_code} {sent.text}")
    return report


class LoadProbe:
    """Requests in a loop on a separate client until stopped: every failure is counted."""

    def __init__(self, base_url: str, images: Images) -> None:
        """Send ``images`` round-robin to ``base_url``."""
        self.base_url = base_url
        self.images = images
        self.report = TrafficReport()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            i = 0
            while not self._stop.is_set():
                image = self.images[i % len(self.images)]
                i += 1
                try:
                    response = http.post("/v1/predict", json={"instances": [image.tolist()]})
                except httpx.HTTPError:
                    self.report.failed += 1
                    continue
                self.report.requests += 1
                if response.status_code != 200:
                    self.report.failed += 1
                    continue
                version = int(response.json()["model_version"])
                self.report.versions[version] = self.report.versions.get(version, 0) + 1

    def __enter__(self) -> LoadProbe:
        """Start sending."""
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop and wait for the last request."""
        self._stop.set()
        self._thread.join(timeout=30)
