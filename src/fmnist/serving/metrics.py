"""Prometheus metrics of the serving app, correct with one server process or several.

**One process** (``fmnist serve``, and every test that builds apps in one process): each app has
its own :class:`~prometheus_client.CollectorRegistry`, so two apps never share a value and
``/metrics`` shows the app's own.

**Several worker processes** (``fmnist serve --workers N``): prometheus-client's multiprocess
mode. Every worker keeps its values in memory-mapped files of one folder
(``PROMETHEUS_MULTIPROC_DIR``) and ``/metrics``, whichever worker answers it, merges the files of
all of them: counters and histograms are summed over the workers, including workers that have
died since (so a total never goes backwards and ``rate()`` sees no counter reset when uvicorn
replaces a worker). Chosen over one metrics process that the workers would report to because an
observation stays a store into shared memory on the request path (no message per request, no
queue that can fill or lose events), there is nothing more to start, supervise or scrape, and it
works under any multi-process server (gunicorn, uvicorn) that starts the workers with the
variable set. ``fmnist serve`` creates a fresh private folder before the workers start and
removes it when it exits (:func:`multiprocess_directory`): files left by an earlier run would
otherwise be added to the new counts.

prometheus-client chooses the mode once, when it is first imported, from the environment; a
process whose values live in the files (:func:`multiprocess_dir`) renders the merged view, any
other its app's own registry. Gauges say how the workers' values combine:

* ``fmnist_model_version``: ``livemostrecent``, the version most recently loaded by a live
  worker (workers converge within one registry poll);
* ``fmnist_live_accuracy``, ``fmnist_labelled_predictions``: ``mostrecent``, since they are
  computed from the shared feedback store, the newest computation is right whichever worker made
  it, even one that has died since;
* ``fmnist_model_info`` is an Info metric, which the files cannot hold: it is the answering
  worker's own.

Before each merge, the ``live*`` gauge files of processes that no longer exist are removed
(:func:`prometheus_client.multiprocess.mark_process_dead`), whoever restarted the worker.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""The environment variable that switches prometheus-client to multiprocess mode."""
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def multiprocess_dir() -> Path | None:
    """The folder of multiprocess mode when this process keeps its values there, else None.

    prometheus-client chose the mode when it was imported: the variable set later (or a
    folder named but not in use) leaves the process in single-process mode.
    """
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    folder = os.environ.get(MULTIPROC_DIR_ENV)
    return Path(folder) if folder else None


def _process_gone(pid: int) -> bool:
    """Whether process ``pid`` no longer runs (gone, or a zombie its parent has not reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: it exists
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # it ended meanwhile; without procfs (not Linux) it still runs
        return Path("/proc").is_dir()
    return stat.rsplit(")", 1)[-1].split()[0] in {"Z", "X"}


def remove_dead_processes(folder: Path) -> list[int]:
    """Drop the ``live*`` gauge values of processes that no longer run; their pids, sorted.

    Counter and histogram files stay: their counts are part of the totals.
    """
    pids = {
        int(match.group(1))
        for path in folder.iterdir()
        if (match := _LIVE_GAUGE_FILE.match(path.name)) is not None
    }
    dead = sorted(pid for pid in pids if pid != os.getpid() and _process_gone(pid))
    for pid in dead:
        mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
    return dead


@contextlib.contextmanager
def multiprocess_directory() -> Iterator[Path]:
    """A fresh private folder for the workers' metrics, named by ``PROMETHEUS_MULTIPROC_DIR``
    while the block runs (set it before the workers start); removed afterwards, the variable
    restored."""
    previous = os.environ.get(MULTIPROC_DIR_ENV)
    folder = Path(tempfile.mkdtemp(prefix="fmnist-metrics-"))  # mode 0700
    os.environ[MULTIPROC_DIR_ENV] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_DIR_ENV, None)
        else:
            os.environ[MULTIPROC_DIR_ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)


class ServingMetrics:
    """Request, prediction and model metrics; label children are cached per label set.

    ``registry`` holds the collectors (other routes add theirs to it); what ``/metrics`` shows
    is :meth:`render`: this registry, or in multiprocess mode the merge of every worker's
    values (see the module docstring).
    """

    def __init__(self) -> None:
        """Create the collectors in a fresh registry."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = multiprocess_dir()
        r = self.registry
        self.requests = Counter(
            "fmnist_http_requests",
            "HTTP requests by route, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "fmnist_http_request_duration_seconds",
            "HTTP request latency (until the response is sent) by route and status code.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "fmnist_predictions",
            "Predictions by served model version and predicted label ('unknown' included).",
            ["model_version", "label"],
            registry=r,
        )
        self.confidence = Histogram(
            "fmnist_prediction_confidence",
            "Calibrated top-class probability of each prediction.",
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.unknown = Counter(
            "fmnist_unknown_reasons",
            "Why predictions were answered 'unknown'.",
            ["reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            "fmnist_inference_batch_size",
            "Images per model call (micro-batches and batch requests).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.model_version = Gauge(
            "fmnist_model_version",
            "Version of the default (served) model.",
            ["model"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.model_info = Info("fmnist_model", "The default (served) model.", registry=r)
        self.reloads = Counter(
            "fmnist_model_reloads",
            "Registry checks for a new default model, by outcome (changed, unchanged; error and "
            "refused keep the model served).",
            ["outcome"],
            registry=r,
        )
        self.log_write_errors = Counter(
            "fmnist_prediction_log_write_errors",
            "Requests whose prediction records could not be written (disk full, I/O error).",
            registry=r,
        )
        self.unlogged_predictions = Counter(
            "fmnist_prediction_log_unlogged_predictions",
            "Predictions answered without a record (monitoring.log_failure: fail_open).",
            registry=r,
        )
        self.invalid_inputs = Counter(
            "fmnist_invalid_inputs",
            "Rejected prediction requests (4xx; never logged as predictions) by route and kind.",
            ["route", "kind"],
            registry=r,
        )
        self.feedback = Counter(
            "fmnist_feedback",
            "Feedback requests by outcome: created, unchanged, conflict, unknown_request, invalid.",
            ["outcome"],
            registry=r,
        )
        self.live_accuracy = Gauge(
            "fmnist_live_accuracy",
            "Accuracy of the labelled predictions (feedback) by model and version.",
            ["model", "model_version"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.labelled = Gauge(
            "fmnist_labelled_predictions",
            "Predictions with feedback (a label, not 'unknown') by model and version.",
            ["model", "model_version"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.rollout_predictions = Counter(
            "fmnist_rollout_predictions",
            "Predictions of the rollout arms (champion, challenger) by experiment, mode "
            "(ab, shadow, canary), model version and predicted label; shadow scores included.",
            ["experiment", "mode", "arm", "model_version", "label"],
            registry=r,
        )
        self.rollout_confidence = Histogram(
            "fmnist_rollout_prediction_confidence",
            "Calibrated top-class probability of the predictions of each rollout arm.",
            ["arm"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._prediction_children: dict[tuple[int, str], Any] = {}
        self._merged: CollectorRegistry | None = None
        if self.multiprocess_dir is not None:
            self._merged = CollectorRegistry()
            MultiProcessCollector(self._merged, str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
            self._merged.register(self.model_info)  # not in the files: this worker's own

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request and record its latency."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            labels = (route, method, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_predictions(
        self, version: int, labels: Sequence[str], confidences: Sequence[float]
    ) -> None:
        """Count predictions by label and record their confidences."""
        for label, confidence in zip(labels, confidences, strict=True):
            key = (version, label)
            child = self._prediction_children.get(key)
            if child is None:
                child = self._prediction_children[key] = self.predictions.labels(
                    str(version), label
                )
            child.inc()
            self.confidence.observe(confidence)

    def observe_arm(
        self,
        *,
        experiment: str,
        mode: str,
        arm: str,
        version: int,
        predictions: Sequence[Mapping[str, Any]],
    ) -> None:
        """Count the predictions (the API's JSON answers) that rollout ``arm`` made."""
        for prediction in predictions:
            label = str(prediction.get("label", ""))
            self.rollout_predictions.labels(experiment, mode, arm, str(version), label).inc()
            confidence = prediction.get("confidence")
            self.rollout_confidence.labels(arm).observe(
                float(confidence) if confidence is not None else 0.0
            )

    def set_model(self, name: str, version: int) -> None:
        """Record the default model."""
        if self.multiprocess_dir is None:  # files cannot forget a label set; the name is fixed
            self.model_version.clear()
        self.model_version.labels(name).set(version)
        self.model_info.info({"name": name, "version": str(version)})

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type: this app's registry, or in multiprocess
        mode every worker's values merged (dead workers' ``live*`` gauges dropped first)."""
        if self._merged is None or self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        remove_dead_processes(self.multiprocess_dir)
        return generate_latest(self._merged), CONTENT_TYPE_LATEST
