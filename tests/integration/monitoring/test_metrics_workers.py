"""Metrics with several server processes (prometheus-client's multiprocess mode).

``fmnist serve --workers 2`` gives every worker's counts in one ``/metrics``, whichever worker
answers the scrape: exact totals, histograms that add up, one model version; a killed worker's
counts stay and its live gauges go; the private metrics folder is removed at exit. One process
(every test that builds apps in-process) keeps one registry per app.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.mmap_dict import MmapedDict

from app_server import wait_until_ready
from fmnist.serving.metrics import MULTIPROC_DIR_ENV, ServingMetrics, multiprocess_directory

from .prometheus_fixtures import (
    FMNIST,
    MonitoringModels,
    exposition_samples,
    free_port,
    stop,
    subprocess_env,
    total,
)

Samples = dict[str, list[tuple[dict[str, str], float]]]
SERVE_OPTIONS = ("--workers", "2", "--reload-interval", "0")


def test_apps_in_one_process_keep_their_own_registries() -> None:
    first, second = ServingMetrics(), ServingMetrics()
    assert first.multiprocess_dir is None and second.multiprocess_dir is None
    first.observe_request("/v1/predict", "POST", 200, 0.01)
    first.observe_predictions(3, ["Bag"], [0.9])
    one = exposition_samples(first.render()[0].decode())
    other = exposition_samples(second.render()[0].decode())
    assert total(one, "fmnist_http_requests_total") == 1
    assert total(one, "fmnist_predictions_total", model_version="3", label="Bag") == 1
    assert total(other, "fmnist_http_requests_total") == 0
    assert total(other, "fmnist_predictions_total") == 0


def test_the_metrics_folder_is_private_and_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_DIR_ENV, raising=False)
    with multiprocess_directory() as folder:
        assert os.environ[MULTIPROC_DIR_ENV] == str(folder)
        assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
        (folder / "counter_1.db").write_bytes(b"")
        # prometheus-client chose its mode when this process imported it: still one registry
        assert ServingMetrics().multiprocess_dir is None
    assert MULTIPROC_DIR_ENV not in os.environ
    assert not folder.exists()


WORKER = textwrap.dedent(
    """
    import sys
    from fmnist.serving.metrics import ServingMetrics

    requests, version = int(sys.argv[1]), int(sys.argv[2])
    accuracy, wait = float(sys.argv[3]), sys.argv[4]
    metrics = ServingMetrics()
    assert metrics.multiprocess_dir is not None
    for _ in range(requests):
        metrics.observe_request("/v1/predict", "POST", 200, 0.004)
    metrics.observe_predictions(version, ["Bag"] * requests, [0.9] * requests)
    metrics.set_model("fmnist-classifier", version)
    metrics.live_accuracy.labels("fmnist-classifier", str(version)).set(accuracy)
    print("ready", flush=True)
    if wait == "wait":
        sys.stdin.readline()
    """
)
RENDER = (
    "from fmnist.serving.metrics import ServingMetrics\n"
    "print(ServingMetrics().render()[0].decode())"
)


def _python(code: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _render(env: dict[str, str]) -> Samples:
    done = subprocess.run(
        [sys.executable, "-c", RENDER], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    return exposition_samples(done.stdout)


def test_processes_are_merged_and_dead_ones_keep_only_their_counts(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {**os.environ, MULTIPROC_DIR_ENV: str(folder)}
    gone = _python(WORKER, "3", "1", "0.5", "exit", env=env)  # ends at once
    assert gone.communicate(timeout=60)[0].strip() == "ready" and gone.returncode == 0
    alive = _python(WORKER, "2", "2", "0.75", "wait", env=env)  # set later, keeps running
    try:
        assert alive.stdout is not None and alive.stdout.readline().strip() == "ready"
        assert (folder / f"gauge_livemostrecent_{gone.pid}.db").is_file()
        merged = _render(env)
        assert total(merged, "fmnist_http_requests_total", route="/v1/predict") == 5
        assert total(merged, "fmnist_http_request_duration_seconds_count") == 5
        assert total(merged, "fmnist_http_request_duration_seconds_bucket", le="+Inf") == 5
        assert total(merged, "fmnist_predictions_total", model_version="1") == 3
        assert total(merged, "fmnist_predictions_total", model_version="2") == 2
        assert total(merged, "fmnist_prediction_confidence_count") == 5
        # livemostrecent: only the live process's version; the dead one's file is removed
        assert merged["fmnist_model_version"] == [({"model": "fmnist-classifier"}, 2.0)]
        assert not (folder / f"gauge_livemostrecent_{gone.pid}.db").exists()
        # mostrecent: computed from shared state, kept from whichever process set it last
        accuracy = {labels["model_version"]: v for labels, v in merged["fmnist_live_accuracy"]}
        assert accuracy == {"1": 0.5, "2": 0.75}
    finally:
        alive.communicate(input="\n", timeout=60)
    after = _render(env)
    assert total(after, "fmnist_http_requests_total", route="/v1/predict") == 5  # counts stay
    assert "fmnist_model_version" not in after  # no live process has a model
    assert len(after["fmnist_live_accuracy"]) == 2


def _per_worker_counts(folder: Path, metric: str, **labels: str) -> Counter[int]:
    """Counter ``metric`` (sample name) per worker pid, read from the multiprocess files."""
    counts: Counter[int] = Counter()
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        entries = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
        for key, value, _timestamp, _pos in entries:
            _metric, name, key_labels, _help = json.loads(key)
            if name == metric and all(key_labels.get(k) == v for k, v in labels.items()):
                counts[pid] += int(value)
    return counts


def _post(base: str, path: str, body: dict[str, object]) -> int:
    """One request on its own connection (so the kernel hands it to either worker)."""
    response = httpx.post(
        f"{base}{path}", json=body, headers={"Connection": "close"}, trust_env=False, timeout=30
    )
    assert response.status_code == 200, response.text
    return len(response.json()["predictions"])


BURST_CONNECTIONS = 32
BURST_REQUESTS = 3


def _keep_alive_burst(base: str, rng: np.random.Generator) -> int:
    """:data:`BURST_CONNECTIONS` keep-alive connections opened at once, each sending
    :data:`BURST_REQUESTS` predictions; returns the predictions."""
    barrier = threading.Barrier(BURST_CONNECTIONS)
    images = rng.integers(0, 256, size=(BURST_CONNECTIONS, 784)).tolist()

    def one_connection(image: list[int]) -> int:
        with httpx.Client(base_url=base, trust_env=False, timeout=60) as http:
            barrier.wait(timeout=60)
            for _ in range(BURST_REQUESTS):
                response = http.post("/v1/predict", json={"instances": [image]})
                assert response.status_code == 200, response.text
        return BURST_REQUESTS

    with ThreadPoolExecutor(BURST_CONNECTIONS) as pool:
        return sum(pool.map(one_connection, images))


def _scrape_after_a_kill(base: str, attempts: int = 5) -> str:
    """``/metrics`` on a new connection, retried when the connection is reset: until the
    killed worker's process has exited, its socket still takes its share of new connections,
    which are reset when it closes (unless ``net.ipv4.tcp_migrate_req`` is 1, see
    ``docs/serving.md#several-workers``)."""
    for attempt in range(attempts):
        try:
            return httpx.get(
                f"{base}/metrics", headers={"Connection": "close"}, trust_env=False
            ).text
        except httpx.TransportError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def _check_totals(samples: Samples, singles: int, batches: int, predictions: int) -> None:
    """Every count equals what was sent, and the histograms add up."""
    ok = {"method": "POST", "status": "200"}
    assert total(samples, "fmnist_predictions_total") == predictions
    assert total(samples, "fmnist_http_requests_total", route="/v1/predict", **ok) == singles
    assert total(samples, "fmnist_http_requests_total", route="/v1/predict/batch", **ok) == batches
    for route, count in (("/v1/predict", singles), ("/v1/predict/batch", batches)):
        name = "fmnist_http_request_duration_seconds"
        assert total(samples, f"{name}_count", route=route, **ok) == count
        buckets = sorted(
            (float(labels["le"]), value)
            for labels, value in samples[f"{name}_bucket"]
            if labels["route"] == route and labels["status"] == "200"
        )
        assert buckets[-1] == (float("inf"), count)
        assert all(a[1] <= b[1] for a, b in itertools.pairwise(buckets))
        assert total(samples, f"{name}_sum", route=route, **ok) > 0
    assert total(samples, "fmnist_prediction_confidence_count") == predictions
    assert total(samples, "fmnist_prediction_confidence_bucket", le="+Inf") == predictions
    assert total(samples, "fmnist_inference_batch_size_sum") == predictions  # images run


@pytest.mark.network
def test_two_workers_export_exact_totals(
    monitoring_models: MonitoringModels, tmp_path: Path
) -> None:
    if not FMNIST.is_file():
        pytest.fail(f"console script not installed at {FMNIST}")
    home = tmp_path / "home"
    shutil.copytree(monitoring_models.settings.home / "mlflow", home / "mlflow")
    temp = tmp_path / "tmp"  # where `fmnist serve` creates its private metrics folder
    temp.mkdir()
    env = subprocess_env(home) | {"TMPDIR": str(temp)}
    env.pop(MULTIPROC_DIR_ENV, None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(FMNIST), "serve", "--host", "127.0.0.1", "--port", str(port), *SERVE_OPTIONS],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        with httpx.Client(base_url=base, trust_env=False) as http:
            wait_until_ready(http, proc, log_path)
        (folder,) = temp.glob("fmnist-metrics-*")
        assert folder.stat().st_mode & 0o777 == 0o700

        rng = np.random.default_rng(0)
        singles = _keep_alive_burst(base, rng)
        workers = _per_worker_counts(folder, "fmnist_predictions_total")
        # each worker listens on its own socket (SO_REUSEPORT): the kernel spreads a burst of
        # connections over them, where one shared socket let one worker accept them all
        assert len(workers) == 2 and min(workers.values()) >= 0.15 * singles, workers
        batches, predictions = 0, singles
        with ThreadPoolExecutor(4) as pool:
            for _ in range(10):  # rounds until both workers have answered predictions
                images = rng.integers(0, 256, size=(22, 784)).tolist()
                jobs = [("/v1/predict", {"instances": [image]}) for image in images[:16]]
                jobs += [
                    ("/v1/predict/batch", {"instances": images[16 + 3 * i : 19 + 3 * i]})
                    for i in range(2)
                ]
                predictions += sum(pool.map(lambda job: _post(base, *job), jobs))
                singles, batches = singles + 16, batches + 2
                workers = _per_worker_counts(folder, "fmnist_predictions_total")
                if len(workers) == 2 and singles >= 48:
                    break
        assert len(workers) == 2, f"one worker answered everything: {workers}"
        assert sum(workers.values()) == predictions

        scraped_by: set[int] = set()
        for _ in range(40):  # scrapes until each worker has answered one
            text = httpx.get(
                f"{base}/metrics", headers={"Connection": "close"}, trust_env=False
            ).text
            samples = exposition_samples(text)
            _check_totals(samples, singles, batches, predictions)
            assert samples["fmnist_model_version"] == [
                ({"model": "fmnist-classifier"}, float(monitoring_models.champion))
            ]
            assert samples["fmnist_model_info"] == [
                ({"name": "fmnist-classifier", "version": str(monitoring_models.champion)}, 1.0)
            ]
            scraped_by = set(
                _per_worker_counts(folder, "fmnist_http_requests_total", route="/metrics")
            )
            if len(scraped_by) == 2:
                break
        assert len(scraped_by) == 2, "every scrape was answered by the same worker"

        victim = min(workers)
        assert (folder / f"gauge_livemostrecent_{victim}.db").is_file()
        os.kill(victim, signal.SIGKILL)
        for _ in range(3):  # the survivor answers with the victim's counts and without its gauges
            text = _scrape_after_a_kill(base)
            _check_totals(exposition_samples(text), singles, batches, predictions)
        assert not (folder / f"gauge_livemostrecent_{victim}.db").exists()
        assert (folder / f"counter_{victim}.db").is_file()
    finally:
        stop(proc, signal.SIGINT)
    assert proc.returncode == 0, log_path.read_text()
    assert not folder.exists(), "the metrics folder outlived the server"
