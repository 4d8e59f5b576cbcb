"""The real monitoring stack for the Prometheus and Grafana tests (session fixtures, re-exported
by this folder's ``conftest.py``).

* ``monitoring_models``: a home with two tiny registered versions (the first is the champion,
  the second the challenger); about 15 s of training, once per session.
* ``monitoring_stack``: the real API (one worker, in a thread) after traffic of every kind the
  metrics describe (predictions, 'unknown' answers, a rejected input, feedback, an A/B split, a
  reload), the real drift monitor (``fmnist monitor run``) after one check, and a real
  Prometheus whose configuration is the repository's ``monitoring/prometheus/prometheus.yml``
  loaded and patched: the targets (the two servers' ports), the intervals (1 s) and the
  rule-file patterns made absolute (the same files); everything else as in the repository.

``prometheus`` and ``promtool`` come from Debian's ``prometheus`` package
(``scripts/install-prometheus.sh``); without them the tests skip, and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app_server import running
from data_paths import missing
from fmnist.composition import build_services
from fmnist.config import Settings
from fmnist.data.snapshot import load_snapshot
from fmnist.data.sources import RawDataset
from fmnist.registry.mlflow_registry import CHALLENGER
from tracking_home import register_tiny_models

REPO = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = REPO / "monitoring" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
FMNIST = Path(sys.executable).parent / "fmnist"
ADMIN_TOKEN = "monitoring-test-admin-token"
SCRAPE_INTERVAL = "1s"
API_JOB, MONITOR_JOB = "fmnist-api", "fmnist-monitor"

T = TypeVar("T")


def require_binary(name: str) -> str:
    """The path of ``name`` on PATH; missing: skipped locally, a failure under ``CI=true``."""
    found = shutil.which(name)
    if found is None:
        missing(f"{name} not installed (scripts/install-prometheus.sh; Debian package prometheus)")
        raise AssertionError("unreachable")
    return found


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 60) -> T:
    """Call ``probe`` until it returns something other than None (connection errors count as
    None); fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = probe()
        except httpx.TransportError:
            value = None
        if value is not None:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def subprocess_env(home: Path, **settings: str) -> dict[str, str]:
    """This environment without inherited ``FMNIST_*``/``MLFLOW_*`` variables, with
    ``FMNIST_HOME`` at ``home`` and ``FMNIST_<KEY>`` for each of ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FMNIST_", "MLFLOW_"))}
    env["FMNIST_HOME"] = str(home)
    env |= {f"FMNIST_{key.upper()}": value for key, value in settings.items()}
    return env


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    """Signal ``proc`` and wait for it (killed after 20 s)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def exposition_samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus exposition text as sample name -> [(labels, value)]."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def total(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(
        value
        for sample_labels, value in samples.get(name, [])
        if all(sample_labels.get(k) == v for k, v in labels.items())
    )


def patched_prometheus_config(targets: dict[str, str]) -> dict[str, Any]:
    """The repository's Prometheus configuration with each job's targets replaced by
    ``targets[job]`` (every job must be given one), the intervals set to 1 s and the rule-file
    patterns resolved against the repository folder; nothing else changed."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"]["scrape_interval"] = SCRAPE_INTERVAL
    config["global"]["evaluation_interval"] = SCRAPE_INTERVAL
    config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == set(targets), f"the repository's jobs {sorted(jobs)} vs {sorted(targets)}"
    for job in config["scrape_configs"]:
        job.pop("scrape_interval", None)
        job.pop("scrape_timeout", None)
        for static in job["static_configs"]:
            static["targets"] = [targets[job["job_name"]]]
    return config


PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"offset", "bool", "atan2", "inf", "nan"}
)
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([^"]+)"')
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects.

    A small tokenizer: strings, comments, label matchers (``{...}``), ranges (``[...]``) and
    label lists (``by (...)``, ``on (...)``, ...) are dropped; of the identifiers left, those
    followed by ``(`` (functions, aggregations), keywords and number parts (``1e-9``, ``5m``)
    are not metric names. ``{__name__="x"}`` selectors count too.
    """
    names = set(_NAME_MATCHER.findall(expr))
    text = _STRING.sub('""', expr)
    text = re.sub(r"#[^\n]*", " ", text)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = _LABEL_LIST.sub(" ", text)
    for match in _IDENTIFIER.finditer(text):
        name, before = match.group(), text[: match.start()]
        if before[-1:].isdigit() or before[-1:] == ".":
            continue  # 1e-9, 5m, 0.5e3
        if text[match.end() :].lstrip().startswith("(") or name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def exported_names(text: str) -> set[str]:
    """The series names an exposition text declares (samples or not), by metric type: a counter
    ``x`` gives ``x_total`` (and ``x_created``), a histogram ``x_bucket``, ``x_sum``,
    ``x_count``, a gauge ``x``, an info ``x_info``."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


@dataclass(frozen=True)
class MonitoringModels:
    """A home with two registered tiny versions: ``champion`` and ``challenger``."""

    settings: Settings
    champion: int
    challenger: int


@pytest.fixture(scope="session")
def monitoring_models(
    tmp_path_factory: pytest.TempPathFactory, raw_subset: RawDataset, mlflow_template_db: Path
) -> MonitoringModels:
    """Train and register two tiny models; the first is champion, the second challenger."""
    tiny = register_tiny_models(
        tmp_path_factory.mktemp("monitoring-home"), raw_subset, mlflow_template_db, seeds=(0, 1)
    )
    champion, challenger = tiny.versions
    registry = build_services(tiny.settings).registry()
    registry.promote(str(champion), reason="monitoring tests serve the first version")
    registry.set_alias(CHALLENGER, challenger)
    return MonitoringModels(tiny.settings, champion, challenger)


@dataclass(frozen=True)
class Traffic:
    """What :func:`send_traffic` sent, and what the API answered."""

    predictions: int
    """Predictions answered (every one counted in ``fmnist_predictions_total``)."""
    unknown: int
    """Of which answered 'unknown'."""
    arms: dict[str, int]
    """Predictions per A/B arm."""
    feedback: int
    """Feedback created."""


def _instances(images: np.ndarray) -> dict[str, Any]:
    return {"instances": [image.tolist() for image in images]}


def send_traffic(http: httpx.Client, images: np.ndarray, challenger: int) -> Traffic:
    """Traffic of every kind the dashboards show (see the module docstring)."""
    labels: list[str] = []
    arms: dict[str, int] = {}
    feedback = 0
    for i, image in enumerate(images[:30]):  # the champion alone
        answer = http.post("/v1/predict", json=_instances(image[None]))
        assert answer.status_code == 200, answer.text
        prediction = answer.json()["predictions"][0]
        labels.append(prediction["label"])
        if i < 8:  # feedback (true labels unknown here: the answer's own class, or 0)
            label = max(prediction["class_id"], 0) if prediction["class_id"] is not None else 0
            sent = http.post(
                "/v1/feedback", json={"request_id": prediction["request_id"], "label": label}
            )
            assert sent.status_code == 201, sent.text
            feedback += 1
    noise = np.random.default_rng(0).integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    answer = http.post("/v1/predict/batch", json=_instances(noise))
    assert answer.status_code == 200, answer.text
    labels += [p["label"] for p in answer.json()["predictions"]]
    rejected = http.post("/v1/predict", content=b"x", headers={"content-type": "text/plain"})
    assert rejected.status_code == 415
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    change = {"mode": "ab", "experiment": "monitoring-test", "challenger": str(challenger)}
    started = http.put("/v1/admin/rollout", json=change | {"share": 0.5}, headers=admin)
    assert started.status_code == 200, started.text
    for i, image in enumerate(images[30:60]):
        answer = http.post(
            "/v1/predict", json=_instances(image[None]), headers={"X-Client-ID": f"client-{i}"}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        labels.append(body["predictions"][0]["label"])
        arms[body["arm"]] = arms.get(body["arm"], 0) + 1
    reload = http.post("/v1/admin/reload", headers=admin)
    assert reload.status_code == 200, reload.text
    return Traffic(len(labels), labels.count("unknown"), arms, feedback)


@dataclass(frozen=True)
class MonitoringStack:
    """The running API, drift monitor and Prometheus (base URLs), and what was sent."""

    api: str
    monitor: str
    prometheus: str
    config: dict[str, Any]
    """The Prometheus configuration in use (the repository's, patched)."""
    config_path: Path
    traffic: Traffic
    champion: int
    challenger: int

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant PromQL query (asserted to succeed)."""
        response = httpx.get(
            f"{self.prometheus}/api/v1/query", params={"query": expr}, trust_env=False
        )
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def _scraped_value(stack: MonitoringStack, expr: str) -> float | None:
    result = stack.query(expr)
    return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="session")
def monitoring_stack(
    monitoring_models: MonitoringModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MonitoringStack]:
    """The API after traffic, the drift monitor after a check, and Prometheus scraping both
    with the repository's rules loaded; stopped at the end of the session."""
    prometheus = require_binary("prometheus")
    require_binary("promtool")
    base = monitoring_models.settings
    tmp = tmp_path_factory.mktemp("monitoring-stack")
    drift = {  # a small, quick check: the monitor runs once, at start
        "drift__min_window": "10",
        "drift__mmd_permutations": "20",
        "drift__mmd_reference_size": "100",
        "drift__write_reports": "false",
    }
    serving = type(base.serving).model_validate(
        base.serving.model_dump()
        | {
            "admin_token": ADMIN_TOKEN,
            "reload_interval_s": 0.0,
            "access_log": False,
            "gc_freeze": False,
            "min_confidence": 0.9,  # noise (and some real images) is answered 'unknown'
        }
    )
    settings = base.model_copy(update={"serving": serving})
    images = np.asarray(load_snapshot(build_services(settings).storage).split("test")[0][:60])
    procs: list[subprocess.Popen[Any]] = []
    logs: list[Path] = []
    with running(settings) as api, httpx.Client(base_url=api, trust_env=False, timeout=30) as http:
        traffic = send_traffic(http, images, monitoring_models.challenger)
        monitor_port = free_port()
        monitor_log = tmp / "monitor.log"
        logs.append(monitor_log)
        with monitor_log.open("w") as log:
            procs.append(
                subprocess.Popen(
                    [
                        str(FMNIST),
                        "monitor",
                        "run",
                        "--port",
                        str(monitor_port),
                        "--interval",
                        "3600",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=subprocess_env(base.home, **drift),
                    cwd=tmp,
                )
            )
        monitor = f"127.0.0.1:{monitor_port}"
        config = patched_prometheus_config(
            {API_JOB: api.removeprefix("http://"), MONITOR_JOB: monitor}
        )
        config_path = tmp / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        prometheus_port = free_port()
        prometheus_log = tmp / "prometheus.log"
        logs.append(prometheus_log)
        with prometheus_log.open("w") as log:
            procs.append(
                subprocess.Popen(
                    [
                        prometheus,
                        f"--config.file={config_path}",
                        f"--storage.tsdb.path={tmp / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{prometheus_port}",
                        "--log.level=warn",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=tmp,
                )
            )
        stack = MonitoringStack(
            api=api,
            monitor=f"http://{monitor}",
            prometheus=f"http://127.0.0.1:{prometheus_port}",
            config=config,
            config_path=config_path,
            traffic=traffic,
            champion=monitoring_models.champion,
            challenger=monitoring_models.challenger,
        )
        try:

            def alive() -> None:
                for proc, path in zip(procs, logs, strict=True):
                    assert proc.poll() is None, path.read_text()

            def checked() -> bool | None:
                alive()
                text = httpx.get(f"{stack.monitor}/metrics", trust_env=False).text
                checks = total(
                    exposition_samples(text), "fmnist_drift_last_check_timestamp_seconds"
                )
                return True if checks > 0 else None

            wait_for("the drift monitor's first check", checked, timeout_s=120)

            def scraped() -> bool | None:
                alive()
                predictions = _scraped_value(
                    stack, f"sum(fmnist_predictions_total{{job='{API_JOB}'}})"
                )
                drift = _scraped_value(stack, f"count(fmnist_drift_p_value{{job='{MONITOR_JOB}'}})")
                done = predictions == traffic.predictions and drift is not None
                return True if done else None

            wait_for("Prometheus to scrape the API and the monitor", scraped)
            yield stack
        finally:
            for proc in procs:
                stop(proc)
