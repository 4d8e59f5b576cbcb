"""HTTP benchmark of ``fmnist serve``: latency at a fixed rate, peak throughput, micro-batching.

Run with ``.venv/bin/python benchmarks/bench_http.py [--home DIR] [--quick]``.

The server runs as a real ``fmnist serve`` process (one worker, validation, metrics and the
per-request log line on; the log goes to a file) on a free 127.0.0.1 port, serving the champion
of ``--home`` (default ``benchmarks/results/home``; when it has no champion, one is trained
first with ``fmnist data snapshot``, ``fmnist train --preset quick`` and ``fmnist evaluate``,
with the promotion gates lowered, since only speed matters here). Load comes from a second
process, and every request posts one 28x28 Fashion-MNIST test image as a multipart PNG:

a. fixed rate (200 requests/s for 60 s): an open-loop asyncio generator (``wrk`` cannot hold a
   rate) sending on keep-alive connections at the scheduled times; latency is measured from
   the send, and the scheduling lag (send time minus intended time) is reported beside it;
b. maximum throughput with 1, 8 and 32 connections: ``wrk`` (Debian package) with a Lua script,
   one wrk thread, so the server keeps one of the two cores (falls back to a closed-loop asyncio
   client when wrk is missing);
c. micro-batching on against off at 32 connections (the server restarted with it off);
d. the prediction log: the fixed rate and peaks with it off, then two servers (log on, log off)
   loaded in turn for ``--ab-rounds`` rounds at 32 connections (the overhead is the ratio of
   the medians);
e. two workers (``fmnist serve --workers 2``, log on) at 8, 16 and 32 connections.

The "Measured" section of ``docs/serving.md`` is generated from the results (``http_report.py``).

It also times ONNX Runtime against PyTorch eager on the served model itself (1 thread each,
as served) at batch 1 and 256. Figures are printed as a table and written to
``benchmarks/results/http.json`` with the load average of the machine next to each phase:
other processes on the same cores change them, so compare runs only at similar load.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from http_report import render_serving_doc

from fmnist.runtime_info import benchmark_machine, load_average

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "http.json"
DEFAULT_HOME = REPO / "benchmarks" / "results" / "home"
FMNIST = Path(sys.executable).parent / "fmnist"
BOUNDARY = "fmnistbenchboundary7d3a"
LOW_GATES = {
    "FMNIST_GATES__MIN_ACCURACY": "0.5",
    "FMNIST_GATES__MIN_CLASS_RECALL": "0.0",
    "FMNIST_GATES__MAX_ECE": "0.2",
}
KEEPALIVE_S = 4.0
"""Idle keep-alive connections older than this are not reused (uvicorn closes them at 5 s)."""
TARGETS = {
    "fixed_rate_p95_ms": 2.0,
    "throughput_rps": 2000.0,
    "throughput_p95_ms": 20.0,
    "prediction_log_max_throughput_overhead": 0.10,
}
"""The serving cost contract, with the durable prediction log on (issue: monitoring)."""

WRK_SCRIPT = """
local f = assert(io.open(os.getenv("FMNIST_BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "multipart/form-data; boundary=@BOUNDARY@"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("FMNIST requests %d duration_us %d\\n",
    summary.requests, summary.duration))
  io.write(string.format("FMNIST errors %d %d %d %d %d\\n",
    e.connect, e.read, e.write, e.status, e.timeout))
  for _, p in ipairs({50, 90, 95, 99}) do
    io.write(string.format("FMNIST p%d %d\\n", p, latency:percentile(p)))
  end
  io.write(string.format("FMNIST max %d\\n", latency.max))
end
""".replace("@BOUNDARY@", BOUNDARY)


# --------------------------------------------------------------------------------------------
# helpers


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children, such as the prediction
    journal's mover (Linux /proc)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(entry.name)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if entry.name == str(pid) or fields[1] == str(pid):
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def run_cli(args: list[str], env: dict[str, str]) -> None:
    """Run an ``fmnist`` command, failing loudly."""
    print(f"$ fmnist {' '.join(args)}", flush=True)
    subprocess.run([str(FMNIST), *args], env=env, check=True)


def ensure_champion(home: Path, preset: str = "quick") -> dict[str, str]:
    """Environment for a home with a champion, training ``preset`` first if needed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FMNIST_")}
    env["FMNIST_HOME"] = str(home)
    shown = subprocess.run(
        [str(FMNIST), "models", "show", "champion"], env=env, capture_output=True, check=False
    )
    if shown.returncode != 0:
        print(f"no champion in {home}: training the {preset} preset first (minutes)")
        home.mkdir(parents=True, exist_ok=True)
        train_env = {**env, **LOW_GATES}
        run_cli(["data", "snapshot"], train_env)
        run_cli(["train", "--preset", preset, "--no-progress"], train_env)
        run_cli(["evaluate", "--no-quantize"], train_env)
    return env


def served_model(env: dict[str, str]) -> dict[str, Any]:
    """Which model the benchmark measures: the home's champion, its architecture and size."""
    shown = subprocess.run(
        [str(FMNIST), "models", "show", "champion"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(shown.stdout)
    model: dict[str, Any] = {
        "name": info["name"],
        "version": info["version"],
        "run_id": info.get("run_id"),
        "test_accuracy": float(info["tags"]["test_accuracy"])
        if "test_accuracy" in info["tags"]
        else None,
    }
    if info.get("run_id"):
        from fmnist.composition import build_services
        from fmnist.config import load_settings

        os.environ["FMNIST_HOME"] = env["FMNIST_HOME"]
        params = build_services(load_settings().settings).registry().run_params(info["run_id"])
        model["architecture"] = params.get("model")
        model["widths"] = params.get("model_options.widths", "default")
        model["parameters"] = int(params["parameters"]) if "parameters" in params else None
    return model


def multipart_body(png: bytes) -> bytes:
    """A multipart/form-data body with one ``file`` part."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + png + f"\r\n--{BOUNDARY}--\r\n".encode()


def sample_png(home: Path) -> bytes:
    """A Fashion-MNIST test image of the home's newest snapshot, as PNG."""
    from PIL import Image

    from fmnist.data.snapshot import load_snapshot
    from fmnist.platform.storage import FsspecStorage

    images, _ = load_snapshot(FsspecStorage(str(home / "lake"))).split("test")
    buffer = io.BytesIO()
    Image.fromarray(images[0]).save(buffer, format="PNG")
    return buffer.getvalue()


@contextmanager
def server(
    env: dict[str, str],
    microbatching: bool,
    log_path: Path,
    *,
    prediction_log: bool = True,
    workers: int = 1,
    settings: dict[str, str] | None = None,
) -> Any:
    """A ``fmnist serve`` process on a free port (``settings``: more ``FMNIST_*`` variables);
    yields (port, pid)."""
    port = free_port()
    server_env = {
        **env,
        **(settings or {}),
        "FMNIST_SERVING__WORKERS": str(workers),
        "FMNIST_SERVING__MICROBATCHING": str(microbatching).lower(),
        "FMNIST_MONITORING__LOG_ENABLED": str(prediction_log).lower(),
        # A fresh prediction log per server: every run starts from the same (empty) state.
        "FMNIST_MONITORING__LOG_PATH": str(log_path.with_suffix(".predictions.db")),
    }
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(FMNIST), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(port, proc)
            yield port, proc.pid
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Poll /readyz until 200."""
    import httpx

    deadline = time.monotonic() + 120
    with httpx.Client(trust_env=False, timeout=2) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if http.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError("server did not become ready")


# --------------------------------------------------------------------------------------------
# load generation (runs in a separate process: ``bench_http.py loadgen ...``)


def _request_bytes(port: int, body: bytes) -> bytes:
    head = (
        "POST /v1/predict HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def _roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _fixed_rate(port: int, body: bytes, rate: float, duration: float) -> dict[str, Any]:
    request = _request_bytes(port, body)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    latencies: list[float] = []
    lags: list[float] = []
    statuses: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    errors = 0
    opened = 0

    async def one(scheduled: float) -> None:
        nonlocal errors, opened
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = None
        while idle:
            reader, writer, last_used = idle.pop()
            if time.perf_counter() - last_used < KEEPALIVE_S:
                conn = (reader, writer)
                break
            writer.close()  # the server closes idle connections after 5 s: do not reuse
        if conn is None:
            conn = await asyncio.open_connection("127.0.0.1", port)
            opened += 1
        sent = time.perf_counter()
        try:
            status = await _roundtrip(*conn, request)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors += 1
            failures[type(exc).__name__] += 1
            conn[1].close()
            return
        done = time.perf_counter()
        latencies.append(done - sent)
        lags.append(sent - scheduled)
        statuses[status] += 1
        idle.append((*conn, done))

    now = time.perf_counter()
    warm = [asyncio.ensure_future(one(now + i / rate)) for i in range(int(rate))]
    await asyncio.gather(*warm)
    latencies.clear()
    lags.clear()
    statuses.clear()
    start = time.perf_counter() + 0.1
    count = int(rate * duration)
    tasks = [asyncio.ensure_future(one(start + i / rate)) for i in range(count)]
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for _, writer, _ in idle:
        writer.close()
    ok = statuses.get(200, 0)
    ms = [x * 1000 for x in latencies]
    return {
        "rate_rps": rate,
        "duration_s": duration,
        "requests": count,
        "achieved_rps": round(len(latencies) / elapsed, 1),
        "errors": errors + (len(latencies) - ok),
        "statuses": {str(k): v for k, v in statuses.items()},
        "failures": dict(failures),
        "connections_opened": opened,
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else None,
        "lag_p99_ms": round(percentile([x * 1000 for x in lags], 99), 3),
    }


async def _closed_loop(port: int, body: bytes, connections: int, duration: float) -> dict[str, Any]:
    """Fallback peak-throughput client when wrk is missing."""
    request = _request_bytes(port, body)
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal errors
        conn = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop:
            sent = time.perf_counter()
            try:
                status = await _roundtrip(*conn, request)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                conn = await asyncio.open_connection("127.0.0.1", port)
                continue
            if status != 200:
                errors += 1
            latencies.append(time.perf_counter() - sent)
        conn[1].close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    ms = [x * 1000 for x in latencies]
    return {
        "tool": "asyncio closed loop",
        "connections": connections,
        "requests": len(ms),
        "rps": round(len(ms) / elapsed, 1),
        "errors": errors,
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
    }


def loadgen_main(argv: list[str]) -> int:
    """Entry point of the load-generator process; prints one JSON object."""
    parser = argparse.ArgumentParser(prog="bench_http.py loadgen")
    parser.add_argument("mode", choices=["fixed", "closed"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60)
    args = parser.parse_args(argv)
    body = args.body.read_bytes()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if args.mode == "fixed":
        result = asyncio.run(_fixed_rate(args.port, body, args.rate, args.duration))
    else:
        result = asyncio.run(_closed_loop(args.port, body, args.connections, args.duration))
    print(json.dumps(result))
    return 0


def run_loadgen(args: list[str]) -> dict[str, Any]:
    """Run the load generator in its own process and return its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "loadgen", *args], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_wrk(port: int, body_path: Path, connections: int, duration: float) -> dict[str, Any]:
    """Peak throughput with wrk (one thread) at ``connections``."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{int(duration)}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}/v1/predict",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "FMNIST_BENCH_BODY": str(body_path)},
        ).stdout
    finally:
        Path(script.name).unlink()
    figures: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line.startswith("FMNIST "):
            key, *values = line.split()[1:]
            figures[key] = values
    requests = int(figures["requests"][0])
    seconds = int(figures["requests"][2]) / 1e6
    errors = [int(x) for x in figures["errors"]]
    return {
        "tool": "wrk -t1",
        "connections": connections,
        "requests": requests,
        "rps": round(requests / seconds, 1),
        "errors": sum(errors),
        "errors_by_kind": dict(
            zip(["connect", "read", "write", "status", "timeout"], errors, strict=True)
        ),
        **{f"{p}_ms": round(int(figures[p][0]) / 1000, 3) for p in ("p50", "p90", "p95", "p99")},
        "max_ms": round(int(figures["max"][0]) / 1000, 3),
    }


def peak(port: int, body_path: Path, connections: int, duration: float) -> dict[str, Any]:
    """Peak throughput with wrk when installed, else the asyncio closed loop."""
    if shutil.which("wrk"):
        return run_wrk(port, body_path, connections, duration)
    return run_loadgen(
        [
            "closed",
            "--port",
            str(port),
            "--body",
            str(body_path),
            "--connections",
            str(connections),
            "--duration",
            str(duration),
        ]
    )


def measured(pid: int, fn: Any, *args: Any) -> dict[str, Any]:
    """Run a load phase; add the server's CPU time per request and the load average."""
    cpu = process_cpu_seconds(pid)
    result: dict[str, Any] = fn(*args)
    spent = process_cpu_seconds(pid) - cpu
    if result.get("requests"):
        result["server_cpu_ms_per_request"] = round(spent * 1000 / result["requests"], 3)
    result["load_average"] = load_average()
    return result


# --------------------------------------------------------------------------------------------
# ONNX Runtime against PyTorch eager on the served model


def engines(home: Path) -> dict[str, Any]:
    """Batch-1 latency and batch-256 throughput of ORT and torch eager (1 thread each)."""
    import numpy as np
    import torch

    from fmnist.composition import build_services
    from fmnist.config import load_settings
    from fmnist.data.loaders import to_tensor
    from fmnist.models import build_model
    from fmnist.serving.model_store import ModelStore

    os.environ["FMNIST_HOME"] = str(home)
    settings = load_settings().settings
    store = ModelStore(settings, build_services(settings).registries)
    model = store.load_default()
    state = torch.load(model.path / "weights.pt", map_location="cpu", weights_only=False)
    config = state["config"]
    net = build_model(config["model"], **config.get("model_options", {}))
    net.load_state_dict(state["state_dict"])
    net.eval()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, size=(256, 28, 28), dtype=np.uint8)
    one = batch[:1]

    def torch_run(images: Any) -> Any:
        with torch.inference_mode():
            x = to_tensor(images).contiguous(memory_format=torch.channels_last)
            return net(x)

    def ort_run(images: Any) -> Any:
        return model.classifier.run(images)

    def median_ms(fn: Any, images: Any, runs: int) -> float:
        for _ in range(5):
            fn(images)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            fn(images)
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000

    figures: dict[str, Any] = {}
    for name, fn in (("onnxruntime", ort_run), ("pytorch_eager", torch_run)):
        figures[name] = {
            "batch1_ms": round(median_ms(fn, one, 500), 4),
            "batch256_images_per_s": round(256 / (median_ms(fn, batch, 30) / 1000), 0),
        }
    figures["ort_speedup_batch1"] = round(
        figures["pytorch_eager"]["batch1_ms"] / figures["onnxruntime"]["batch1_ms"], 2
    )
    figures["ort_speedup_batch256"] = round(
        figures["onnxruntime"]["batch256_images_per_s"]
        / figures["pytorch_eager"]["batch256_images_per_s"],
        2,
    )
    figures["model"] = (
        f"{model.name} v{model.version} ({config['model']}, {config.get('model_options')})"
    )
    figures["threads"] = 1
    figures["torch"] = torch.__version__
    figures["load_average"] = load_average()
    return figures


# --------------------------------------------------------------------------------------------
# main


def main() -> int:
    """Run every phase and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="FMNIST_HOME to serve")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--fixed-seconds", type=float, default=60.0)
    parser.add_argument("--peak-seconds", type=float, default=15.0)
    parser.add_argument("--quick", action="store_true", help="short phases (a smoke run)")
    parser.add_argument(
        "--preset", default="quick", help="what to train when --home has no champion"
    )
    parser.add_argument(
        "--core-only",
        action="store_true",
        help="only the fixed rate and the peaks (no micro-batching, log or worker phases)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="the result file")
    parser.add_argument("--skip-engines", action="store_true", help="no ORT/torch comparison")
    parser.add_argument(
        "--ab-rounds", type=int, default=3, help="alternating log on/off rounds at 32 connections"
    )
    args = parser.parse_args()
    if args.quick:
        args.fixed_seconds, args.peak_seconds = 10.0, 4.0
    if not FMNIST.is_file():
        print(f"error: console script not found at {FMNIST}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    home = args.home.resolve()
    env = ensure_champion(home, args.preset)
    work = Path(tempfile.mkdtemp(prefix="fmnist-bench-http-"))
    body_path = work / "body.multipart"
    body_path.write_bytes(multipart_body(sample_png(home)))
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": benchmark_machine(),
        "setup": "fmnist serve, 1 worker, httptools, asyncio loop, validation + metrics + "
        "access log + durable prediction log on (unless stated); client on the same machine "
        "(127.0.0.1); one 28x28 PNG per request (multipart)",
        "load_average_start": load_average(),
        "targets": TARGETS,
        "model": served_model(env),
    }

    def fixed_args(port: int) -> list[str]:
        return [
            "fixed",
            "--port",
            str(port),
            "--body",
            str(body_path),
            "--rate",
            str(args.rate),
            "--duration",
            str(args.fixed_seconds),
        ]

    with server(env, True, work / "server-on.log") as (port, pid):
        results["fixed_rate"] = measured(pid, run_loadgen, fixed_args(port))
        print(f"fixed rate: {results['fixed_rate']}", flush=True)
        peak(port, body_path, 8, 2)  # warm-up
        results["peak"] = []
        for connections in (1, 8, 32):
            figures = measured(pid, peak, port, body_path, connections, args.peak_seconds)
            results["peak"].append(figures)
            print(f"peak {connections}: {figures}", flush=True)
    if args.core_only:
        return write_core(results, args.output, started, work)
    with server(env, False, work / "server-off.log") as (port, pid):
        peak(port, body_path, 8, 2)
        off = measured(pid, peak, port, body_path, 32, args.peak_seconds)
    results["microbatching"] = {
        "connections": 32,
        "on": results["peak"][-1],
        "off": off,
        "on_over_off_rps": round(results["peak"][-1]["rps"] / off["rps"], 3),
    }
    print(f"micro-batching off, 32: {off}", flush=True)
    results["inline"] = inline_ablation(env, work, body_path, results["peak"][0], args.peak_seconds)
    with server(env, True, work / "server-nolog.log", prediction_log=False) as (port, pid):
        no_log_fixed = measured(pid, run_loadgen, fixed_args(port))
        peak(port, body_path, 8, 2)
        no_log_peak = [measured(pid, peak, port, body_path, c, args.peak_seconds) for c in (8, 32)]
    results["prediction_log"] = {
        "on": {"fixed_rate": results["fixed_rate"], "peak": results["peak"]},
        "off": {"fixed_rate": no_log_fixed, "peak": no_log_peak},
        "fsync": os.environ.get("FMNIST_MONITORING__FSYNC", "normal"),
        "fixed_rate_p95_on_minus_off_ms": round(
            results["fixed_rate"]["p95_ms"] - no_log_fixed["p95_ms"], 3
        ),
        **log_overhead(env, work, body_path, args.ab_rounds, args.peak_seconds),
    }
    results["two_workers"] = two_workers(env, work, body_path, args.peak_seconds)
    print(f"prediction log off: fixed {no_log_fixed}; peak {no_log_peak}", flush=True)
    if not args.skip_engines:
        results["engines"] = engines(home)
    results["load_average_end"] = load_average()
    results["seconds"] = round(time.perf_counter() - started, 1)
    fixed = results["fixed_rate"]
    best = max(results["peak"], key=lambda r: r["rps"])
    results["verdict"] = {
        "fixed_rate_p95_ok": fixed["p95_ms"] <= TARGETS["fixed_rate_p95_ms"],
        "fixed_rate_zero_errors": fixed["errors"] == 0,
        "throughput_ok": any(
            r["rps"] >= TARGETS["throughput_rps"] and r["p95_ms"] < TARGETS["throughput_p95_ms"]
            for r in results["peak"]
        ),
        "zero_errors": all(r["errors"] == 0 for r in [*results["peak"], off]),
        "prediction_log_overhead_ok": results["prediction_log"]["throughput_overhead"]
        <= TARGETS["prediction_log_max_throughput_overhead"],
        "two_workers_throughput_ok": any(
            r["rps"] >= TARGETS["throughput_rps"] and r["p95_ms"] < TARGETS["throughput_p95_ms"]
            for r in results["two_workers"]
        ),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results, best)
    shutil.rmtree(work, ignore_errors=True)
    print(f"\nwrote {args.output} ({results['seconds']} s in all)")
    if args.output.resolve() == RESULTS.resolve():
        print(f"wrote {render_serving_doc(results)}")
        from figures import refresh_after  # the pages that read http.json

        refresh_after(args.output)
    return 0


def write_core(results: dict[str, Any], output: Path, started: float, work: Path) -> int:
    """Finish a ``--core-only`` run: the fixed rate and peaks with their verdict, written."""
    fixed = results["fixed_rate"]
    results["load_average_end"] = load_average()
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["verdict"] = {
        "fixed_rate_p95_ok": fixed["p95_ms"] <= TARGETS["fixed_rate_p95_ms"],
        "throughput_ok": any(
            r["rps"] >= TARGETS["throughput_rps"] and r["p95_ms"] < TARGETS["throughput_p95_ms"]
            for r in results["peak"]
        ),
        "zero_errors": all(r["errors"] == 0 for r in [fixed, *results["peak"]]),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {output} ({results['seconds']} s in all)")
    from figures import refresh_after  # the served-model table of docs/serving.md

    refresh_after(output)
    return 0


def log_overhead(
    env: dict[str, str], work: Path, body_path: Path, rounds: int, seconds: float
) -> dict[str, Any]:
    """Throughput with the prediction log on and off at 32 connections: two servers up at
    once, loaded in turn for ``rounds`` rounds, so a drift of the machine hits both alike."""
    on_runs, off_runs = [], []
    with (
        server(env, True, work / "ab-on.log") as (port_on, pid_on),
        server(env, True, work / "ab-off.log", prediction_log=False) as (port_off, pid_off),
    ):
        for port in (port_on, port_off):
            peak(port, body_path, 8, 2)
        for _ in range(rounds):
            off_runs.append(measured(pid_off, peak, port_off, body_path, 32, seconds))
            on_runs.append(measured(pid_on, peak, port_on, body_path, 32, seconds))
    on_rps = statistics.median(r["rps"] for r in on_runs)
    off_rps = statistics.median(r["rps"] for r in off_runs)
    return {
        "ab_rounds": {"on": on_runs, "off": off_runs},
        "ab_median_rps": {"on": on_rps, "off": off_rps},
        "throughput_overhead": round(1 - on_rps / off_rps, 4),
        "cpu_ms_per_request": {
            "on": statistics.median(r["server_cpu_ms_per_request"] for r in on_runs),
            "off": statistics.median(r["server_cpu_ms_per_request"] for r in off_runs),
        },
    }


def inline_ablation(
    env: dict[str, str], work: Path, body_path: Path, on: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """One connection with a lone request's model call on the inference thread
    (``serving.microbatch_inline_max=0``) against on the event loop (the default, ``on``)."""
    settings = {"FMNIST_SERVING__MICROBATCH_INLINE_MAX": "0"}
    with server(env, True, work / "server-thread.log", settings=settings) as (port, pid):
        peak(port, body_path, 8, 2)
        off = measured(pid, peak, port, body_path, 1, seconds)
    print(f"lone requests on the inference thread, 1: {off}", flush=True)
    return {
        "connections": 1,
        "on": on,
        "off": off,
        "on_over_off_rps": round(on["rps"] / off["rps"], 3),
    }


def two_workers(
    env: dict[str, str], work: Path, body_path: Path, seconds: float
) -> list[dict[str, Any]]:
    """Peak throughput of ``fmnist serve --workers 2`` (prediction log on)."""
    with server(env, True, work / "two-workers.log", workers=2) as (port, pid):
        peak(port, body_path, 8, 2)
        figures = [measured(pid, peak, port, body_path, c, seconds) for c in (8, 16, 32)]
    for row in figures:
        print(f"two workers, {row['connections']}: {row}", flush=True)
    return figures


def print_table(results: dict[str, Any], best: dict[str, Any]) -> None:
    """The figures as a plain-text table."""
    fixed = results["fixed_rate"]
    print(f"\nCPU: {results['machine']['cpu']} ({results['machine']['cores_usable']} cores)")
    print(
        f"{'phase':<34}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'cpu ms/req':>11}  load avg"
    )
    rows = [(f"fixed {fixed['rate_rps']:.0f} req/s, {fixed['duration_s']:.0f} s", fixed)]
    rows += [(f"peak, {r['connections']} conn (micro-batching on)", r) for r in results["peak"]]
    rows.append(("peak, 32 conn (micro-batching off)", results["microbatching"]["off"]))
    for name, r in rows:
        rps = r.get("rps", r.get("achieved_rps"))
        print(
            f"{name:<34}{rps:>9.0f}{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}{r['p99_ms']:>9.2f}"
            f"{r['errors']:>8}{r.get('server_cpu_ms_per_request', float('nan')):>11.3f}"
            f"  {r['load_average']}"
        )
    print(
        f"micro-batching on/off at 32 connections: {results['microbatching']['on_over_off_rps']}x"
    )
    log = results["prediction_log"]
    print(
        f"prediction log (fsync {log['fsync']}): throughput overhead "
        f"{log['throughput_overhead']:.1%}; fixed-rate p95 on - off "
        f"{log['fixed_rate_p95_on_minus_off_ms']:+.3f} ms"
    )
    if "engines" in results:
        e = results["engines"]
        print(
            f"ORT vs PyTorch eager ({e['model']}, 1 thread): batch 1 "
            f"{e['onnxruntime']['batch1_ms']:.3f} vs {e['pytorch_eager']['batch1_ms']:.3f} ms "
            f"({e['ort_speedup_batch1']}x); batch 256 "
            f"{e['onnxruntime']['batch256_images_per_s']:.0f} vs "
            f"{e['pytorch_eager']['batch256_images_per_s']:.0f} images/s "
            f"({e['ort_speedup_batch256']}x)"
        )
    print(
        f"best peak: {best['rps']:.0f} req/s at p95 {best['p95_ms']:.2f} ms; verdict: "
        f"{results['verdict']}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "loadgen":
        sys.exit(loadgen_main(sys.argv[2:]))
    sys.exit(main())
