"""Faults the service survives (issue "Reliability and security", part 2, "Faults").

Two more live elsewhere: a hot swap under load
(``test_reload.py::test_hot_reload_under_concurrent_requests_loses_nothing``) and SIGTERM with
requests in flight
(``test_platform_contracts.py::test_sigterm_finishes_in_flight_requests_and_keeps_their_records``).
Here: a worker killed under load, the registry or artifact store unreachable during a reload, a
model file that fails its checksum, and a prediction-log disk that fills up (a real tmpfs:
root only; under ``CI=true`` a missing prerequisite fails).
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app_server import GRACEFUL, running, start_serve, stop_serve, wait_until_ready
from data_paths import missing
from fmnist.config import Settings, load_settings
from fmnist.monitoring.journal import CLOSED_SUFFIX, journal_dir, owner_pid
from fmnist.monitoring.journal_frames import read_frames
from fmnist.monitoring.prediction_log import default_paths, open_prediction_log
from fmnist.platform.registry import CHAMPION, MODEL_SHA256_TAG
from fmnist.registry.exported import INDEX_FILE
from helpers import closed_port

from .conftest import ADMIN_TOKEN, Trained, serving_settings

pytestmark = pytest.mark.network

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
INSTANCE = {"instances": [[0] * 392 + [200] * 392]}
MODEL = "fmnist-classifier"
LOAD_THREADS = 4


@pytest.fixture
def serving_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """``caplog`` attached to the ``fmnist.serving`` logger itself (which an in-process
    ``fmnist serve`` earlier in the session may have stopped from propagating)."""
    logger = logging.getLogger("fmnist.serving")
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


def metric(http: httpx.Client, name: str, **labels: str) -> float:
    """The value of sample ``name`` with ``labels`` on ``/metrics`` (0 when absent)."""
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def served_version(http: httpx.Client) -> int:
    """The version ``/readyz`` reports (which must answer 200)."""
    ready = http.get("/readyz")
    assert ready.status_code == 200, ready.text
    version: int = ready.json()["model_version"]
    return version


def predicted_version(http: httpx.Client) -> int:
    """The version that answers a prediction (which must succeed)."""
    answer = http.post("/v1/predict", json=INSTANCE)
    assert answer.status_code == 200, answer.text
    version: int = answer.json()["model_version"]
    return version


# --- one of two workers killed under load ------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One prediction request of the load."""

    request_id: str
    started: float
    ok: bool
    error: str


def journal_pids(folder: Path) -> set[int]:
    """The processes whose journal files are in ``folder``: the workers that logged a
    prediction (a worker's journal stays until it rotates or the worker stops)."""
    return {pid for p in folder.glob("*.jnl") if (pid := owner_pid(p)) is not None}


def parent_pid(pid: int) -> int:
    """The parent of process ``pid`` (Linux ``/proc``)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll ``condition()`` every 50 ms until it is true, failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)


def test_a_killed_worker_is_replaced_and_only_its_requests_in_flight_fail(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    home, server_log = tmp_path / "home", tmp_path / "serve.log"
    env = {
        "FMNIST_SERVING__HOST": "127.0.0.1",
        "FMNIST_SERVING__PORT": str(port),
        "FMNIST_SERVING__WORKERS": "2",
        "FMNIST_SERVING__MODEL_EXPORT": str(exported),
    }
    proc = start_serve(env, home, server_log)
    base = f"http://127.0.0.1:{port}"
    journals = journal_dir(home / "monitoring" / "predictions.db")
    attempts: list[Attempt] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        # A new connection per request: the kernel hands each to either worker, and a killed
        # worker can only take down the requests it holds at that moment.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=base, trust_env=False, timeout=30, limits=limits) as http:
            for i in itertools.count():
                if stop.is_set():
                    return
                rid = f"kill-{worker}-{i}"
                started = time.monotonic()
                try:
                    answer = http.post("/v1/predict", json=INSTANCE, headers={"X-Request-ID": rid})
                    ok, error = answer.status_code == 200, f"{answer.status_code}"
                except httpx.HTTPError as exc:
                    ok, error = False, repr(exc)
                with lock:
                    attempts.append(Attempt(rid, started, ok, "" if ok else error))

    threads = [threading.Thread(target=load, args=(w,)) for w in range(LOAD_THREADS)]
    try:
        with httpx.Client(base_url=base, trust_env=False) as http:
            wait_until_ready(http, proc, server_log)
        for thread in threads:
            thread.start()
        wait_for(lambda: len(journal_pids(journals)) == 2, 30, "both workers to serve")
        workers = journal_pids(journals)
        assert all(parent_pid(pid) == proc.pid for pid in workers)
        victim = min(workers)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: journal_pids(journals) - workers, 90, "a new worker to serve")
        restarted = time.monotonic()
        (replacement,) = journal_pids(journals) - workers
        assert parent_pid(replacement) == proc.pid  # the supervisor started it
        time.sleep(1.5)  # the load goes on with the replacement serving
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        status = stop_serve(proc)
    assert status in (0, GRACEFUL), server_log.read_text()[-3000:]

    failed = [a for a in attempts if not a.ok]
    assert len(failed) <= LOAD_THREADS, failed  # at most one request in flight per client
    assert all(a.started < killed + 1.0 for a in failed), failed  # only those at the kill
    meanwhile = [a for a in attempts if killed + 1.0 <= a.started < restarted]
    assert meanwhile and all(a.ok for a in meanwhile)  # the survivor served alone meanwhile
    after = [a for a in attempts if a.started >= restarted]
    assert after and all(a.ok for a in after)
    availability = 1 - len(failed) / len(attempts)
    assert availability >= 0.98, (availability, len(attempts))

    monkeypatch.setenv("FMNIST_HOME", str(home))
    log = open_prediction_log(load_settings().settings, create=False)
    lost = [a.request_id for a in attempts if a.ok and log.get(a.request_id) is None]
    assert lost == []  # every acknowledged prediction, the killed worker's included
    log.close()


# --- the registry, the artifacts or the model file fail during a reload ------------------------


def export_settings(trained: Trained, export: Path, home: Path) -> Settings:
    """Serving the export ``export`` from a home of its own (its own model cache)."""
    return serving_settings(trained.settings.model_copy(update={"home": home}), model_export=export)


def move_alias(export: Path, alias: str, version: int) -> None:
    """Point ``alias`` at ``version`` in the export's index (as a new export would)."""
    path = export / INDEX_FILE
    index = json.loads(path.read_text())
    for entry in index["models"][MODEL]:
        aliases = [a for a in entry.get("aliases", []) if a != alias]
        entry["aliases"] = aliases + ([alias] if entry["version"] == version else [])
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps(index))
    staged.replace(path)


def assert_reload_refused(http: httpx.Client, served: int, *phrases: str) -> str:
    """``POST /v1/admin/reload`` answers a 503 problem naming ``phrases``, the version served
    stays ``served`` and ready; returns the problem's detail."""
    answer = http.post("/v1/admin/reload", headers=AUTH)
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "urn:fmnist:problem:reload-failed"
    detail: str = problem["detail"]
    for phrase in (*phrases, f"still serving {MODEL} version {served}"):
        assert phrase in detail, detail
    assert "/" not in detail, detail  # no local paths
    assert served_version(http) == served
    assert predicted_version(http) == served
    return detail


def test_registry_or_artifacts_unreachable_during_reload_keep_the_old_model(
    trained: Trained, exported: Path, tmp_path: Path, serving_log: pytest.LogCaptureFixture
) -> None:
    settings = export_settings(trained, exported, tmp_path / "home")
    moved = exported.with_name("export-unreachable")
    with running(settings) as url, httpx.Client(base_url=url, trust_env=False) as http:
        assert served_version(http) == trained.first
        exported.rename(moved)  # the registry is gone (an unmounted volume, a deleted bucket)
        try:
            assert_reload_refused(http, trained.first, f"registry lookup of {MODEL}@champion")
        finally:
            moved.rename(exported)
        assert metric(http, "fmnist_model_reloads_total", outcome="error") == 1
        assert "model reload failed, still serving" in serving_log.text

        # The registry answers, the new champion's files are gone (the artifact store).
        move_alias(exported, CHAMPION, trained.second)
        files = exported / "models" / MODEL / str(trained.second)
        files.rename(moved)
        try:
            assert_reload_refused(
                http, trained.first, f"{MODEL} version {trained.second} could not be downloaded"
            )
        finally:
            moved.rename(files)
        assert metric(http, "fmnist_model_reloads_total", outcome="error") == 2

        ok = http.post("/v1/admin/reload", headers=AUTH)  # everything back: the swap happens
        assert ok.status_code == 200, ok.text
        assert ok.json()["model_version"] == trained.second
        assert served_version(http) == trained.second


def test_a_model_file_that_fails_its_checksum_is_refused_and_the_old_model_kept(
    trained: Trained, exported: Path, tmp_path: Path, serving_log: pytest.LogCaptureFixture
) -> None:
    index = json.loads((exported / INDEX_FILE).read_text())
    tags = {e["version"]: e["tags"] for e in index["models"][MODEL]}
    assert len(tags[trained.second][MODEL_SHA256_TAG]) == 64  # recorded at registration
    home = tmp_path / "home"
    settings = export_settings(trained, exported, home)
    model_file = exported / "models" / MODEL / str(trained.second) / "model.onnx"
    original = model_file.read_bytes()
    with running(settings) as url, httpx.Client(base_url=url, trust_env=False) as http:
        assert served_version(http) == trained.first
        move_alias(exported, CHAMPION, trained.second)
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0xFF  # one bit flip: still a file, not the registered one
        model_file.write_bytes(bytes(damaged))
        assert_reload_refused(http, trained.first, f"{MODEL} version {trained.second} refused")
        assert metric(http, "fmnist_model_reloads_total", outcome="refused") == 1
        assert "SHA-256" in serving_log.text
        cached = home / "serving" / "models" / MODEL / str(trained.second)
        assert not cached.exists()  # the refused copy is not kept: the next try downloads

        model_file.write_bytes(original)  # the right bytes again: accepted
        ok = http.post("/v1/admin/reload", headers=AUTH)
        assert ok.status_code == 200, ok.text
        assert predicted_version(http) == trained.second


# --- the prediction log's disk fills up ---------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted for the test (needs root; unmounted afterwards)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0:
        missing("mounting a tmpfs for the disk-full test needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        missing(f"cannot mount a tmpfs for the disk-full test: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def fill(folder: Path) -> Path:
    """A file that takes every free byte of ``folder``'s file system."""
    path = folder / "filler"
    block = b"\xa5" * 65536
    with path.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return path


def assert_no_torn_frame_in_front(folder: Path) -> None:
    """Every journal file in ``folder`` reads as whole frames; only a closed one may end in a
    torn frame (which the mover reports and skips), an open one never does."""
    for path in folder.glob("*.jnl"):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # moved and removed meanwhile
            continue
        _, used, broken = read_frames(data)
        assert not broken, path.name
        assert used == len(data) or path.name.endswith(CLOSED_SUFFIX), path.name


@pytest.mark.parametrize("policy", ["fail_closed", "fail_open"])
def test_a_full_log_disk_answers_by_policy_and_logging_resumes_without_restart(
    trained: Trained, small_disk: Path, policy: str, serving_log: pytest.LogCaptureFixture
) -> None:
    base = serving_settings(trained.settings)
    monitoring = base.monitoring.model_copy(
        update={"log_path": small_disk / "predictions.db", "log_failure": policy}
    )
    settings = base.model_copy(update={"monitoring": monitoring})
    journals = journal_dir(default_paths(settings)[0])
    answered: list[tuple[str, httpx.Response]] = []
    with running(settings) as url, httpx.Client(base_url=url, trust_env=False) as http:

        def predict(n: int, phase: str) -> list[int]:
            for i in range(n):
                rid = f"{policy}-{phase}-{i}"
                answered.append(
                    (rid, http.post("/v1/predict", json=INSTANCE, headers={"X-Request-ID": rid}))
                )
            return [r.status_code for _, r in answered[-n:]]

        assert predict(5, "before") == [200] * 5
        filler = fill(small_disk)
        # The journal's last page takes a frame or two; the write that crosses into the next
        # page is torn and fails, and so does every write while the disk stays full.
        during = predict(20, "full")
        errors = metric(http, "fmnist_prediction_log_write_errors_total")
        if policy == "fail_closed":
            assert 503 in during and set(during) <= {200, 503}, during
            refused = answered[5 + during.index(503)][1]
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"] == "urn:fmnist:problem:log-unavailable"
            assert int(refused.headers["retry-after"]) > 0
            assert errors == during.count(503)
            assert metric(http, "fmnist_prediction_log_unlogged_predictions_total") == 0
            unready = http.get("/readyz")  # drained: the probe cannot write either
            assert unready.status_code == 503, unready.text
            assert unready.json()["type"] == "urn:fmnist:problem:log-unavailable"
        else:
            assert during == [200] * 20  # answered, counted as unlogged
            assert errors >= 1
            assert metric(http, "fmnist_prediction_log_unlogged_predictions_total") == errors
            assert "prediction log write failed" in serving_log.text
            assert http.get("/readyz").status_code == 200  # answering, unlogged, by policy
        assert_no_torn_frame_in_front(journals)
        filler.unlink()  # space is back: no restart
        assert http.get("/readyz").status_code == 200  # ready again before any prediction
        assert predict(10, "after") == [200] * 10
        served_version(http)
        assert metric(http, "fmnist_prediction_log_write_errors_total") == errors
    log = open_prediction_log(settings, create=False)  # the server has stopped: all moved
    missing_ids = [rid for rid, r in answered if r.status_code == 200 and log.get(rid) is None]
    log.close()
    if policy == "fail_closed":
        assert missing_ids == []  # a 200 always means "logged"
    else:
        assert len(missing_ids) == errors  # exactly the predictions counted as unlogged
        assert all("-full-" in rid for rid in missing_ids)
    assert [p.name for p in journals.glob("*.jnl")] == []  # every file moved, torn ones too
