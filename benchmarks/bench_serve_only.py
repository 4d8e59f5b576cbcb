"""The serving-only install: its size on disk and the cold start of ``fmnist serve`` from it.

Run with ``make test-serve-only`` (which builds the install first) or
``.venv/bin/python benchmarks/bench_serve_only.py --python .venv-serve/bin/python
[--home DIR] [--runs N]``.

The install is what the API image holds: ``requirements/serve.lock.txt`` (hash-pinned) and
fmnist, no training stack. Its size is everything under its ``site-packages`` (pip and
setuptools, which an image can drop, reported apart). The cold start is the time from starting
``python -m fmnist serve`` on an exported champion (``fmnist models export`` of ``--home``,
default ``benchmarks/results/home``, trained first if it has no champion) to the first 200 of
``/readyz``, median of ``--runs`` starts with a warm page cache (the first start is discarded).
The deployment is timed end to end on this machine as an image build and a rollout would do
it: a fresh virtual environment, the hash-pinned install of ``requirements/serve.lock.txt``
and of fmnist (pip's cache warm, as a cached image layer would be), ``fmnist models export``
of the champion and the cold start to ready (``--no-deploy`` skips it).
Writes ``results/serve_only.json`` and renders its section of ``docs/serving.md``
(``--report-only`` renders the last result again without measuring).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from bench_http import DEFAULT_HOME, FMNIST, ensure_champion, free_port

from fmnist import __version__
from fmnist.runtime_info import cores_usable, cpu_model, load_average

RESULTS = Path(__file__).resolve().parent / "results"
DOC = Path(__file__).resolve().parents[1] / "docs" / "serving.md"
BEGIN, END = "<!-- serve_only: begin -->", "<!-- serve_only: end -->"
SIZE_GOAL_MB = 450
COLD_START_GOAL_S = 3.0
TOOLING = ("pip", "setuptools", "_distutils_hack", "pkg_resources")


def folder_mb(path: Path) -> float:
    """Bytes of every file under ``path``, in MB (10^6)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def install_size(python: Path) -> dict[str, Any]:
    """The size of the install's site-packages, its largest packages and the tooling part."""
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    site = Path(out.stdout.strip())
    parts = {entry.name: folder_mb(entry) for entry in site.iterdir() if entry.is_dir()}
    tooling = sum(mb for name, mb in parts.items() if name.split("-")[0] in TOOLING)
    total = folder_mb(site)
    largest = sorted(parts.items(), key=lambda item: item[1], reverse=True)[:8]
    return {
        "site_packages_mb": round(total, 1),
        "without_pip_setuptools_mb": round(total - tooling, 1),
        "largest_mb": {name: round(mb, 1) for name, mb in largest},
    }


def cold_start(python: Path, export: Path, home: Path) -> float:
    """Seconds from process start to the first 200 of ``/readyz``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FMNIST_", "MLFLOW_"))}
    env |= {"FMNIST_HOME": str(home), "FMNIST_SERVING__MODEL_EXPORT": str(export)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(python), "-m", "fmnist", "serve", "--port", str(port), "--reload-interval", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(trust_env=False, timeout=2) as http:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {proc.returncode}")
                try:
                    if http.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                if time.perf_counter() - started > 60:
                    raise RuntimeError("the server was not ready in 60 s")
                time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def timed_deployment(home_env: dict[str, str], workdir: Path) -> dict[str, float]:
    """Seconds of each step of a local deployment from scratch, and their total."""
    repo = Path(__file__).resolve().parents[1]
    venv, export = workdir / "venv", workdir / "export"
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-deps"]
    steps: dict[str, float] = {}

    def step(name: str, *commands: list[str]) -> None:
        started = time.perf_counter()
        for command in commands:
            subprocess.run(command, check=True, cwd=repo, env=home_env, stdout=subprocess.DEVNULL)
        steps[name] = round(time.perf_counter() - started, 2)

    step(
        "install_s",
        [sys.executable, "-m", "venv", str(venv)],
        [*pip, "--require-hashes", "-r", "requirements/serve.lock.txt"],
        [*pip, "."],
    )
    step("export_s", [str(FMNIST), "models", "export", "--to", str(export)])
    started = time.perf_counter()
    cold_start(python, export, workdir / "home")
    steps["start_to_ready_s"] = round(time.perf_counter() - started, 2)
    steps["total_s"] = round(sum(steps.values()), 2)
    return steps


def render(result: dict[str, Any]) -> str:
    """The generated section of ``docs/serving.md`` for one result file."""
    machine, size = result["machine"], result["size"]
    largest = ", ".join(f"{name} {mb:.0f} MB" for name, mb in size["largest_mb"].items())
    starts = ", ".join(f"{s:.2f}" for s in result["cold_start_s"])
    return "\n".join(
        [
            BEGIN,
            f"Measured {result['measured_at']} on {machine['cpu']} ({machine['cores']} cores, "
            f"load {machine['load_average']}) by `benchmarks/bench_serve_only.py` "
            f"(`make test-serve-only`):",
            "",
            "| | measured | goal |",
            "|---|---:|---:|",
            f"| installed size (site-packages) | {size['site_packages_mb']:.0f} MB | "
            f"<= {SIZE_GOAL_MB} MB |",
            f"| without pip and setuptools | {size['without_pip_setuptools_mb']:.0f} MB | |",
            f"| cold start to ready (median of {len(result['cold_start_s'])}) | "
            f"{result['cold_start_median_s']:.2f} s | <= {COLD_START_GOAL_S:.0f} s |",
            "",
            f"Largest parts: {largest}. Starts (s): {starts}.",
            *deployment_lines(result.get("deployment")),
            END,
        ]
    )


def deployment_lines(deploy: dict[str, float] | None) -> list[str]:
    """The deployment timing of the section (nothing when it was not measured)."""
    if deploy is None:
        return []
    return [
        "",
        f"A local deployment from scratch took **{deploy['total_s']:.0f} s**: a fresh "
        f"environment with the hash-pinned install {deploy['install_s']:.0f} s (pip's cache "
        f"warm), the champion's export {deploy['export_s']:.1f} s, start to ready "
        f"{deploy['start_to_ready_s']:.1f} s. A cloud deployment adds the image push and the "
        "rollout's waits, not timed here.",
    ]


def write_doc(result: dict[str, Any]) -> None:
    """Replace the generated section of ``docs/serving.md``."""
    text = DOC.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    if not rest:
        raise SystemExit(f"{DOC} has no {BEGIN} ... {END} section")
    DOC.write_text(head + render(result) + tail, encoding="utf-8")


def main() -> int:
    """Measure (or re-render with ``--report-only``), print, write the result and the doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=Path, help="the serving-only install's interpreter")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--no-deploy", action="store_true", help="skip the deployment timing")
    args = parser.parse_args()
    path = RESULTS / "serve_only.json"
    if args.report_only:
        write_doc(json.loads(path.read_text()))
        return 0
    if args.python is None or not args.python.is_file():
        parser.error("--python must name the serving-only install's interpreter")
    env = ensure_champion(args.home)
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "export"
        subprocess.run([str(FMNIST), "models", "export", "--to", str(export)], env=env, check=True)
        cold_start(args.python, export, Path(tmp) / "warm-up")  # fills the page cache
        starts = [
            cold_start(args.python, export, Path(tmp) / f"home-{i}") for i in range(args.runs)
        ]
        deploy = None if args.no_deploy else timed_deployment(env, Path(tmp) / "deploy")
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": cores_usable(), "load_average": load_average()},
        "fmnist": __version__,
        "python": str(args.python),
        "size": install_size(args.python),
        "cold_start_s": [round(s, 3) for s in starts],
        "cold_start_median_s": round(statistics.median(starts), 3),
    }
    if deploy is not None:
        result["deployment"] = deploy
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    write_doc(result)
    print(render(result))
    if path.resolve() == (RESULTS / "serve_only.json").resolve():
        from figures import refresh_after  # the pages fed by this result (the KPI table)

        refresh_after(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
