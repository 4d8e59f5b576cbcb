"""The models of the Pareto table and how each is trained: ``bench_pareto.py --home H --train``.

Every model is one ``fmnist train`` run in home ``H`` (its own MLflow run, checkpoint and run
folder). Runs are trained one after the other, each in a subprocess whose progress goes to
``H/logs/pareto-NAME.log``; its run id is recorded in ``H/pareto-runs.json`` (written atomically)
as soon as it finishes, so an interrupted plan picks up where it stopped: finished models are not
trained again, and the interrupted one resumes from its per-epoch checkpoint (``--resume``).
Teachers are named by model: ``{cnn}`` becomes that model's run folder.

On the 2-core machine of the committed result the whole plan takes about 2.5 hours; the
students and the quick models take minutes each, the 30-epoch ViT about an hour (each run's own
minutes are in the table).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from fmnist.atomic import atomic_write_text

PLAN: tuple[tuple[str, str], ...] = (
    ("mlp", "--preset mlp"),
    ("quick", "--preset quick"),
    ("cnn", "--preset default"),
    ("cnn-long", "--preset cnn-long"),
    ("student-alone", "--preset student"),
    ("student-distilled", "--preset student --teacher {cnn}"),
    ("vit-distilled", "--preset vit --teacher {cnn}"),
    ("vit-distilled-30", "--preset vit --epochs 30 --teacher {cnn}"),
    ("student-distilled-ensemble", "--preset student --teacher {cnn} --teacher {cnn-long}"),
)
"""(model name, ``fmnist train`` arguments), in training order (teachers first)."""
ENSEMBLE: tuple[str, tuple[str, ...]] = (
    "ensemble",
    ("cnn-long", "cnn", "vit-distilled-30", "student-distilled"),
)
"""The soft-voting ensemble of the table and its members (weights fitted on validation)."""
SERVED = "cnn"
"""The model ``make demo`` serves (``fmnist train``'s default preset)."""
RUNS_FILE = "pareto-runs.json"


def recorded(home: Path) -> dict[str, str]:
    """Model name -> run id of the finished runs recorded in ``home``."""
    path = home / RUNS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def arguments(template: str, home: Path, runs: dict[str, str]) -> list[str]:
    """``fmnist train`` arguments with each ``{model}`` replaced by its run folder."""

    def folder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in runs:
            raise SystemExit(f"error: the plan names teacher {name!r} before training it")
        return str(home / "runs" / runs[name])

    return re.sub(r"\{([a-z0-9-]+)\}", folder, template).split()


def train_missing(home: Path, fmnist: Path) -> dict[str, str]:
    """Train every model of :data:`PLAN` not yet recorded in ``home``; all run ids."""
    runs = recorded(home)
    (home / "logs").mkdir(parents=True, exist_ok=True)
    env = os.environ | {"FMNIST_HOME": str(home)}
    for name, template in PLAN:
        if name in runs:
            continue
        log = home / "logs" / f"pareto-{name}.log"
        print(f"training {name} (progress: {log})", flush=True)
        command = [str(fmnist), "train", *arguments(template, home, runs), "--resume", "--json"]
        with log.open("a", encoding="utf-8") as progress:
            done = subprocess.run(
                command, env=env, stdout=subprocess.PIPE, stderr=progress, text=True, check=False
            )
        if done.returncode != 0:
            raise SystemExit(f"error: training {name} failed (exit {done.returncode}); see {log}")
        runs[name] = json.loads(done.stdout.strip().splitlines()[-1])["run_id"]
        atomic_write_text(home / RUNS_FILE, json.dumps(runs, indent=2) + "\n")
    return runs
