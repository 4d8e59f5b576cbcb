"""The soak's load: a weighted mix of what clients send to ``fmnist serve``, at a constant rate.

Run by ``benchmarks/bench_soak.py`` (``locust -f benchmarks/soak/locustfile.py --headless
--payloads P --record R --user-rps X``); never imported by the server or by pytest (locust
monkey-patches the process with gevent). Each task is one request:

======================  ======  ===========================================================
task                    weight  request
======================  ======  ===========================================================
``predict png``         60      ``POST /v1/predict``, one 28x28 Fashion-MNIST PNG (multipart)
``predict batch``       20      ``POST /v1/predict/batch``, 2-8 JSON instances: pixel arrays
                                or ``{"b64": PNG}``
``predict photo``       4       ``POST /v1/predict``, one clothing photo (JPEG, multipart)
``feedback``            15      ``POST /v1/feedback``, the true label of an earlier prediction
                                of the same user (by its ``request_id``)
``explain``             1       ``POST /v1/explain``, one PNG, integrated gradients
======================  ======  ===========================================================

Every request, with its status and latency, is written to the ``--record`` file (tab-separated:
start time, task, path, status, milliseconds, ok, the acknowledged prediction ids), so that the
driver can check that every acknowledged id reached the prediction log.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections import deque
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlsplit

from locust import events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment

BOUNDARY = "fmnistsoakboundary5c1e"
FEEDBACK_QUEUE = 2000
"""Predictions a user remembers for later feedback (the oldest first)."""


class Payloads:
    """The request bodies, built once from ``payloads.json``."""

    def __init__(self, path: Path) -> None:
        """Read the images and photos and pre-encode the multipart bodies."""
        data = json.loads(path.read_text())
        self.images: list[dict[str, Any]] = data["images"]
        self.pngs = [base64.b64decode(image["png_b64"]) for image in self.images]
        self.png_bodies = [multipart(png, "x.png", "image/png") for png in self.pngs]
        self.photo_bodies = [
            multipart(Path(p).read_bytes(), Path(p).name, "image/jpeg") for p in data["photos"]
        ]


def multipart(data: bytes, filename: str, content_type: str) -> bytes:
    """A multipart/form-data body with one ``file`` part."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
_state: dict[str, Any] = {}


def _options(parser: Any) -> None:
    parser.add_argument("--payloads", type=str, default="", help="payloads.json of the driver")
    parser.add_argument("--record", type=str, default="", help="file of one line per request")
    parser.add_argument("--user-rps", type=float, default=5.0, help="requests/s of each user")


def _open_record(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    assert options is not None and options.payloads and options.record, "--payloads, --record"
    _state["payloads"] = Payloads(Path(options.payloads))
    _state["record"] = Path(options.record).open("a", buffering=1 << 16)  # noqa: SIM115


def _close_record(**_: Any) -> None:
    record: IO[str] | None = _state.pop("record", None)
    if record is not None:
        record.close()


def _write_record(
    name: str,
    response_time: float,
    response: Any,
    exception: BaseException | None,
    start_time: float,
    context: dict[str, Any],
    url: str = "",
    **_: Any,
) -> None:
    status = getattr(response, "status_code", 0) or 0
    ids = ",".join(context.get("ids", ())) if exception is None else ""
    _state["record"].write(
        f"{start_time:.6f}\t{name}\t{urlsplit(url).path}\t{status}\t{response_time:.3f}"
        f"\t{int(exception is None)}\t{ids}\n"
    )


for _hook, _handler in (
    (events.init_command_line_parser, _options),
    (events.test_start, _open_record),
    (events.test_stop, _close_record),
    (events.request, _write_record),
):
    cast(Any, _hook).add_listener(_handler)  # locust's event hooks are untyped


def _expect(resp: Any, status: int, key: str) -> list[dict[str, Any]]:
    """Mark ``resp`` (locust's response context) failed unless it has ``status`` and a JSON
    list ``key`` of items that carry a ``request_id``; the list (empty on failure). The ids go
    into the record."""
    if resp.status_code != status:
        resp.failure(f"status {resp.status_code}: {(resp.text or '')[:200]}")
        return []
    try:
        items: list[dict[str, Any]] = resp.json()[key]
        ids = [str(item["request_id"]) for item in items]
    except (ValueError, KeyError, TypeError) as exc:
        resp.failure(f"malformed answer ({exc!r}): {(resp.text or '')[:200]}")
        return []
    resp.request_meta["context"]["ids"] = ids
    resp.success()
    return items


class SoakUser(FastHttpUser):
    """One client: ``--user-rps`` requests per second, a remembered queue of predictions."""

    def on_start(self) -> None:
        """A client id, an empty feedback queue, and a random phase for the pacing: users
        spawned in step would otherwise send in bursts, every period."""
        options = self.environment.parsed_options
        assert options is not None
        self.period = 1 / options.user_rps
        self.payloads: Payloads = _state["payloads"]
        self.headers = {"X-Client-ID": f"soak-{id(self):x}"}
        self.unlabelled: deque[tuple[str, int]] = deque(maxlen=FEEDBACK_QUEUE)
        self.due = time.time() + random.uniform(0, self.period)
        time.sleep(self.due - time.time())  # gevent's sleep: locust patches the process

    def wait_time(self) -> float:
        """Constant throughput (as locust's ``constant_throughput``, but on a fixed schedule
        from the user's phase): the next task ``1 / --user-rps`` s after the last one was
        due; a user that fell behind drops the slots it missed rather than bursting."""
        now = time.time()
        self.due = max(self.due + self.period, now)
        return self.due - now

    def _post(self, path: str, name: str, body: bytes | None = None, **json: Any) -> Any:
        """POST ``body`` (multipart) or ``json``; locust's response context manager."""
        client: Any = self.client  # its stubs type ``data`` as str; bytes are sent as they are
        if body is None:
            return client.post(
                path, name=name, json=json, headers=self.headers, catch_response=True
            )
        headers = {**self.headers, **MULTIPART_HEADERS}
        return client.post(path, name=name, data=body, headers=headers, catch_response=True)

    def _image(self) -> int:
        return random.randrange(len(self.payloads.images))

    @task(60)
    def predict_png(self) -> None:
        """One Fashion-MNIST PNG to ``/v1/predict``."""
        i = self._image()
        with self._post("/v1/predict", "predict png", self.payloads.png_bodies[i]) as resp:
            for item in _expect(resp, 200, "predictions"):
                self.unlabelled.append((item["request_id"], self.payloads.images[i]["label"]))

    @task(20)
    def predict_batch(self) -> None:
        """2-8 instances to ``/v1/predict/batch``, pixel arrays or base64 PNGs."""
        chosen = [self._image() for _ in range(random.randint(2, 8))]
        images = self.payloads.images
        instances = [
            images[i]["pixels"] if random.random() < 0.5 else {"b64": images[i]["png_b64"]}
            for i in chosen
        ]
        with self._post("/v1/predict/batch", "predict batch", instances=instances) as resp:
            items = _expect(resp, 200, "predictions")
            if items and len(items) != len(chosen):
                resp.failure(f"{len(items)} predictions for {len(chosen)} instances")
                return
            for i, item in zip(chosen, items, strict=False):
                self.unlabelled.append((item["request_id"], images[i]["label"]))

    @task(4)
    def predict_photo(self) -> None:
        """One clothing photo (JPEG) to ``/v1/predict``."""
        body = random.choice(self.payloads.photo_bodies)
        with self._post("/v1/predict", "predict photo", body) as resp:
            _expect(resp, 200, "predictions")

    @task(15)
    def feedback(self) -> None:
        """The true label of this user's oldest unlabelled prediction (a PNG if none yet)."""
        if not self.unlabelled:
            self.predict_png()
            return
        request_id, label = self.unlabelled.popleft()
        with self._post("/v1/feedback", "feedback", request_id=request_id, label=label) as resp:
            if resp.status_code == 201:
                resp.success()
            else:
                resp.failure(f"status {resp.status_code}: {(resp.text or '')[:200]}")

    @task(1)
    def explain(self) -> None:
        """One PNG to ``/v1/explain`` (integrated gradients, the default)."""
        body = self.payloads.png_bodies[self._image()]
        with self._post("/v1/explain", "explain", body) as resp:
            _expect(resp, 200, "explanations")
