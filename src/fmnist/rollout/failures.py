"""Failed predictions per arm: the error-rate guard of a shadow or canary.

The serving layer appends one JSON line per prediction that failed on an arm (the client of a
failed challenger call gets the champion's answer instead, so the failure is visible only
here and in the server log). Appends of one short line with ``O_APPEND`` are atomic, so every
worker process writes the same file. Failures are rare by construction; the file is read
whole.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

FAILURES_FILE = "failures.jsonl"
"""Beside the rollout state file."""


def failures_path(home: Path) -> Path:
    """Where the failures of ``home``'s rollouts are kept."""
    return home / "rollout" / FAILURES_FILE


def record_failure(path: Path, arm: str, experiment: str, error: str) -> None:
    """Append one failure of ``arm`` in ``experiment``."""
    line = {
        "time": datetime.now(UTC).isoformat(),
        "arm": arm,
        "experiment": experiment,
        "error": error[:300],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, json.dumps(line).encode() + b"\n")
    finally:
        os.close(fd)


def failure_counts(path: Path, since: datetime | None = None) -> dict[str, int]:
    """Failures per arm since ``since`` (UTC; all when None)."""
    counts: dict[str, int] = {}
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return counts
    for line in lines:
        try:
            entry = json.loads(line)
            when = datetime.fromisoformat(entry["time"])
        except (ValueError, KeyError, TypeError):  # a torn last line after a crash
            continue
        if since is None or when >= since:
            counts[entry["arm"]] = counts.get(entry["arm"], 0) + 1
    return counts
