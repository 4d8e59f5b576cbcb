"""Explanation latency: every method over real HTTP, in-process, and the IG ``n_steps`` sweep.

Run with ``.venv/bin/python benchmarks/bench_explain.py [--home DIR] [--requests N]
[--weights DIR ...]``.

1. HTTP: a real ``fmnist serve`` process (one worker, default settings, so the ``explain``
   section's defaults) serves the champion of ``--home`` (default ``benchmarks/results/home``;
   a ``quick`` champion is trained first when there is none, as ``bench_http.py`` does). For
   each method, one client on one keep-alive connection posts one 28x28 Fashion-MNIST test
   PNG per request (multipart, the UI's request), cycling through 50 test images: the first
   request of the server (PyTorch import, weights, parity check) is reported separately, then
   3 warm-up requests, then ``--requests`` timed ones (fewer for the slow methods). Reported:
   p50/p95/p99/max client latency and the median ``seconds`` the server spent in the explainer.
2. In-process, for the champion and each ``--weights`` folder (a version or run folder with
   ``weights.pt`` and ``model.onnx``): ``fmnist.explain.explain`` on one image per call, one
   PyTorch thread, every method; and integrated gradients at ``n_steps`` 8, 16, 32, 64 with
   the completeness error, ``|sum(attributions) - (f(x) - f(black))|`` relative to
   ``|f(x) - f(black)|`` (median and p95 over the images), which the quadrature's step count
   trades against time.

Figures are printed and written to ``benchmarks/results/explain.json`` with the load average
(other processes on the same cores change them), then rendered into ``docs/explainability.md``
(``explain_report.py``).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import (
    DEFAULT_HOME,
    FMNIST,
    ensure_champion,
    percentile,
    server,
)

from fmnist.runtime_info import benchmark_machine, load_average

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "explain.json"
METHODS = ("integrated_gradients", "shap", "lime", "occlusion")
SLOW_SHARE = {"integrated_gradients": 1.0, "occlusion": 0.5, "shap": 0.25, "lime": 0.25}
"""Share of ``--requests`` timed per method (the slow ones take seconds per request)."""
IG_STEPS = (8, 16, 32, 64)
TARGET_P95_MS = 200.0


def test_images(home: Path, n: int = 50) -> np.ndarray:
    """The first ``n`` test images of the home's newest snapshot."""
    from fmnist.data.snapshot import load_snapshot
    from fmnist.platform.storage import FsspecStorage

    images, _ = load_snapshot(FsspecStorage(str(home / "lake"))).split("test")
    return np.ascontiguousarray(images[:n])


def png(pixels: np.ndarray) -> bytes:
    """A 28x28 grey PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
    }


# --------------------------------------------------------------------------------------------
# 1. over HTTP


def http_phase(env: dict[str, str], images: np.ndarray, requests: int) -> dict[str, Any]:
    """Every method over HTTP against one ``fmnist serve`` process."""
    import httpx

    bodies = [png(image) for image in images]
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="fmnist-bench-explain-") as work,
        server(env, True, Path(work) / "server.log") as (port, _pid),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=120) as http,
    ):

        def call(method: str, i: int) -> tuple[float, float]:
            files = {"file": ("x.png", bodies[i % len(bodies)], "image/png")}
            started = time.perf_counter()
            response = http.post("/v1/explain", params={"method": method}, files=files)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{method}: {response.status_code} {response.text[:300]}")
            return elapsed, float(response.json()["seconds"])

        first, _ = call("integrated_gradients", 0)
        results["first_request_s"] = round(first, 3)
        print(f"first explanation of the server (imports, weights): {first:.2f} s", flush=True)
        for method in METHODS:
            count = max(10, round(requests * SLOW_SHARE[method]))
            cold, _ = call(method, 1)  # the method's own imports and background
            for i in range(3):
                call(method, i)
            client, server_side = [], []
            load_before = load_average()
            for i in range(count):
                elapsed, computed = call(method, i)
                client.append(elapsed)
                server_side.append(computed)
            results[method] = {
                **summary_ms(client),
                "server_explain_p50_ms": round(statistics.median(server_side) * 1000, 2),
                "first_call_s": round(cold, 3),
                "load_average": [load_before, load_average()],
            }
            print(f"http {method}: {results[method]}", flush=True)
    return results


# --------------------------------------------------------------------------------------------
# 2. in process


def in_process(folder: Path, images: np.ndarray, calls: int) -> dict[str, Any]:
    """Every method on one image per call, and the IG step sweep, for the model in ``folder``."""
    import torch

    from fmnist.config import Settings
    from fmnist.explain import ExplainOptions, explain, load_served_model

    torch.set_num_threads(1)
    model = load_served_model(folder)
    settings = Settings().explain
    base = ExplainOptions.from_settings(settings)
    background = images[::-1][: settings.shap_background_size]
    config = model.info.get("config") or {}
    out: dict[str, Any] = {
        "folder": str(folder),
        "model": config.get("model"),
        "model_options": config.get("model_options"),
        "methods": {},
        "ig_steps": [],
    }

    def timed(method: str, options: Any, n: int) -> tuple[list[float], list[Any]]:
        for i in range(2):
            explain(model, images[i : i + 1], method, background=background, options=options)
        seconds, results = [], []
        for i in range(n):
            started = time.perf_counter()
            result = explain(
                model, images[i % len(images)][None], method, background=background, options=options
            )
            seconds.append(time.perf_counter() - started)
            results.append(result)
        return seconds, results

    for method in METHODS:
        n = calls if method in ("integrated_gradients", "occlusion") else max(10, calls // 4)
        seconds, _ = timed(method, base, n)
        out["methods"][method] = summary_ms(seconds)
        print(f"in-process {folder.name} {method}: {out['methods'][method]}", flush=True)

    x = torch.from_numpy(images.astype(np.float32) / 255)[:, None]
    with torch.no_grad():
        gap_all = model(x) - model(torch.zeros_like(x))
    for steps in IG_STEPS:
        options = ExplainOptions(ig_steps=steps)
        seconds, results = timed("integrated_gradients", options, calls)
        errors = []
        for i, result in enumerate(results):
            gap = float(gap_all[i % len(images), int(result.class_ids[0])])
            total = float(result.attributions.sum())
            errors.append(abs(total - gap) / max(abs(gap), 1e-6))
        row = {
            "steps": steps,
            **summary_ms(seconds),
            "completeness_error_median": round(statistics.median(errors), 4),
            "completeness_error_p95": round(percentile(errors, 95), 4),
        }
        out["ig_steps"].append(row)
        print(f"in-process {folder.name} IG sweep: {row}", flush=True)
    return out


def champion_folder(env: dict[str, str]) -> Path:
    """The champion's version folder (downloaded into the home's serving cache if needed)."""
    import os

    from fmnist.composition import build_services
    from fmnist.config import load_settings
    from fmnist.serving.model_store import ModelStore

    os.environ["FMNIST_HOME"] = env["FMNIST_HOME"]
    settings = load_settings().settings
    return ModelStore(settings, build_services(settings).registries).load_default().path


def main() -> int:
    """Run both phases and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="FMNIST_HOME to serve")
    parser.add_argument("--requests", type=int, default=200, help="timed IG requests")
    parser.add_argument("--calls", type=int, default=100, help="timed in-process calls")
    parser.add_argument(
        "--weights", type=Path, action="append", default=[], help="more model folders"
    )
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    if not FMNIST.is_file():
        print(f"error: console script not found at {FMNIST}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    home = args.home.resolve()
    env = ensure_champion(home)
    images = test_images(home)
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": benchmark_machine("torch", "captum", "shap", "lime"),
        "setup": "fmnist serve, 1 worker, default explain settings; one client, one keep-alive "
        "connection, one 28x28 test PNG per request (multipart); in-process: 1 torch thread, "
        "one image per call",
        "load_average_start": load_average(),
        "target_p95_ms": TARGET_P95_MS,
    }
    if not args.skip_http:
        results["http"] = http_phase(env, images, args.requests)
    folders = [champion_folder(env), *args.weights]
    results["in_process"] = [in_process(f.resolve(), images, args.calls) for f in folders]
    results["load_average_end"] = load_average()
    results["seconds"] = round(time.perf_counter() - started, 1)
    if "http" in results:
        results["verdict"] = {
            "default_p95_ok": results["http"]["integrated_gradients"]["p95_ms"] <= TARGET_P95_MS
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwrote {RESULTS} ({results['seconds']} s in all)")
    from figures import refresh_after  # docs/explainability.md (explain_report.py)

    refresh_after(RESULTS)
    return 0


def print_table(results: dict[str, Any]) -> None:
    """The figures as plain-text tables."""
    print(f"\nCPU: {results['machine']['cpu']} ({results['machine']['cores_usable']} cores)")
    if "http" in results:
        print(f"\nover HTTP (first request of the server: {results['http']['first_request_s']} s)")
        print(f"{'method':<22}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'server p50':>12}")
        for method in METHODS:
            r = results["http"][method]
            print(
                f"{method:<22}{r['n']:>5}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}"
                f"{r['p99_ms']:>9.1f}{r['server_explain_p50_ms']:>12.1f}"
            )
    for block in results["in_process"]:
        print(f"\nin process: {block['model']} {block['model_options']} ({block['folder']})")
        for method, r in block["methods"].items():
            print(f"{method:<22}{r['n']:>5}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}")
        print(f"{'IG steps':<10}{'p50 ms':>9}{'p95 ms':>9}{'compl. err median':>19}{'p95':>8}")
        for r in block["ig_steps"]:
            print(
                f"{r['steps']:<10}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}"
                f"{r['completeness_error_median']:>19.4f}{r['completeness_error_p95']:>8.4f}"
            )


if __name__ == "__main__":
    sys.exit(main())
