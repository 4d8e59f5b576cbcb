"""The real system the video films: ``fmnist serve`` on loopback with a trained champion, the
closed loop switched on, real traffic, and the documentation site.

It reuses the closed-loop scenario of :mod:`fmnist.demo.loop` (its settings, its server
process, its traffic and its monitor check), so what the video shows is what ``fmnist demo
loop`` and its system test run. The docs site is built with MkDocs into the work folder and
served by Python's HTTP server on loopback.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from fmnist.config import Settings, load_settings
from fmnist.demo.harness import WebhookReceiver, drifted, free_port, replay, serving
from fmnist.demo.loop import admin_headers, monitor_check, scenario_settings
from fmnist.errors import FmnistError

if TYPE_CHECKING:
    import httpx

    from fmnist.platform.services import Services

Say = Callable[[str], None]


class VideoError(FmnistError):
    """The system could not be brought into the state a scene films."""


@dataclass
class Traffic:
    """Validation images of the champion's snapshot, handed out in order, never twice."""

    images: np.ndarray
    labels: np.ndarray
    cursor: int = 0

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n`` images and their labels."""
        if self.cursor + n > len(self.labels):
            raise VideoError(f"the snapshot's validation split has too few images for {n} more")
        part = slice(self.cursor, self.cursor + n)
        self.cursor += n
        return self.images[part], self.labels[part]


@dataclass
class System:
    """The running system: the server's client, the services of the monitor, the docs URL."""

    http: httpx.Client
    url: str
    services: Services
    quiet_services: Services
    """The same settings without drift reports (the rollout rounds' checks)."""
    traffic: Traffic
    webhook: WebhookReceiver
    docs_url: str
    say: Say
    champion_version: int
    candidate_version: int | None = None
    log: list[dict[str, Any]] = field(default_factory=list)

    def served_version(self) -> int:
        """The version the server answers with."""
        return int(self.http.get("/v1/models").json()["served"]["version"])

    def rollout(self) -> dict[str, Any]:
        """``GET /v1/admin/rollout``."""
        body: dict[str, Any] = self.http.get("/v1/admin/rollout", headers=admin_headers()).json()
        return body

    def send(self, n: int, *, shifted: bool) -> None:
        """``n`` requests with feedback: validation images, turned and darker if ``shifted``."""
        images, labels = self.traffic.take(n)
        report = replay(self.http, drifted(images) if shifted else images, labels)
        if report.failed:
            raise VideoError(f"{report.failed} of {report.requests} requests failed")
        self.log.append({"sent": n, "shifted": shifted, "arms": report.arms})

    def check(self, *, report: bool = True) -> bool:
        """One check of ``fmnist monitor run`` (drift, alerts, retrain, rollout step); whether
        drift was detected."""
        detected, step = monitor_check(self.services if report else self.quiet_services)
        if step is not None and step.retrain is not None and step.retrain.status != "skipped":
            self.say(f"retrain: {step.retrain.status} ({step.retrain.reason})")
            if step.retrain.status == "candidate":
                self.candidate_version = int(step.retrain.to_dict()["version"])
        if step is not None and step.rollout.action != "idle":
            self.say(f"rollout: {step.rollout.action} -> share {step.rollout.share_to:.0%}")
        self.log.append({"check": True, "drift": detected})
        return detected

    def advance(self, until: Callable[[], bool], *, per_round: int, max_rounds: int = 10) -> None:
        """Drifted traffic and monitor checks until ``until()`` holds."""
        for _ in range(max_rounds):
            if until():
                return
            self.send(per_round, shifted=True)
            self.check(report=False)
        if not until():
            raise VideoError(f"the rollout did not get there in {max_rounds} rounds")

    def wait(self, condition: Callable[[], bool], timeout_s: float = 30) -> None:
        """Poll ``condition`` until it holds (servers reload the registry on their own)."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise VideoError("the server did not catch up in time")
            time.sleep(0.1)


def video_settings(home: Path, webhook_url: str) -> dict[str, Any]:
    """The closed-loop scenario's settings, with drift reports for the monitoring page."""
    values = scenario_settings(home, webhook_url)
    values["drift"] = {**values["drift"], "write_reports": True}
    return values


def ensure_champion(services: Services, say: Say) -> int:
    """The champion's version; trains and registers one (``tiny`` preset) if there is none."""
    from fmnist.platform.registry import CHAMPION, RegistryError

    with contextlib.suppress(RegistryError):
        return services.registry().get(CHAMPION).version
    say("training and registering a champion (tiny preset; the main job's pipeline)")
    services.orchestrator.run("training", {"preset": "tiny"})
    return services.registry().get(CHAMPION).version


def build_site(mkdocs_config: Path, site: Path) -> None:
    """Build the documentation site (not strict: a page being written must not stop a video)."""
    command = [sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(mkdocs_config)]
    result = subprocess.run(
        [*command, "--site-dir", str(site)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    if result.returncode != 0 or not (site / "index.html").is_file():
        raise VideoError(f"mkdocs build failed: {result.stderr.strip()[-1500:]}")


@contextlib.contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on loopback (a thread); yields the base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

    handler = functools.partial(Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def garment_png(traffic: Traffic, label: int, scale: int = 8) -> bytes:
    """A validation image of class ``label`` as a PNG file (enlarged), as a user would upload
    a Fashion-MNIST-like picture; it is taken out of the traffic pool."""
    from PIL import Image

    index = int(np.flatnonzero(traffic.labels[traffic.cursor :] == label)[0]) + traffic.cursor
    pixels = traffic.images[index]
    image = Image.fromarray(pixels, mode="L").resize(
        (28 * scale, 28 * scale), Image.Resampling.NEAREST
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@contextlib.contextmanager
def running_system(
    home: Path, mkdocs_config: Path, build_services: Callable[[Settings], Services], say: Say
) -> Iterator[System]:
    """Start everything in ``home`` (a champion trained when it has none); stop it after."""
    from fmnist.data.snapshot import load_snapshot
    from fmnist.platform.registry import CHAMPION

    home.mkdir(parents=True, exist_ok=True)
    with WebhookReceiver().running() as webhook:
        config = home / "video.yaml"
        config.write_text(yaml.safe_dump(video_settings(home, webhook.url)), encoding="utf-8")
        settings = load_settings(config).settings
        services = build_services(settings)
        quiet = settings.model_copy(
            update={"drift": settings.drift.model_copy(update={"write_reports": False})}
        )
        version = ensure_champion(services, say)
        champion = services.registry().get(CHAMPION)
        images, labels = load_snapshot(services.storage, champion.tags["snapshot_id"]).split("val")
        order = np.random.default_rng(0).permutation(len(labels))
        traffic = Traffic(images[order], labels[order])
        say("building the documentation site (mkdocs)")
        site = home / "site"
        build_site(mkdocs_config, site)
        port = free_port()
        with (
            static_site(site) as docs_url,
            serving(config, port, home / "server.log") as http,
        ):
            say(f"serving version {version} on http://127.0.0.1:{port}; docs on {docs_url}")
            yield System(
                http=http,
                url=f"http://127.0.0.1:{port}",
                services=services,
                quiet_services=build_services(quiet),
                traffic=traffic,
                webhook=webhook,
                docs_url=docs_url,
                say=say,
                champion_version=version,
            )
