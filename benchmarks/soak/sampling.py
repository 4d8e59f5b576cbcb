"""Resident memory and CPU time of a process tree (the server and its journal mover), sampled
in a background thread while the soak runs."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs in the lock

PRESSURE = Path("/proc/pressure/cpu")


def cpu_pressure() -> dict[str, float]:
    """Linux's CPU pressure (PSI, ``some``): the share of time, in %, that a runnable task
    waited for a core over the last 10, 60 and 300 s; empty where the kernel has none."""
    try:
        line = PRESSURE.read_text().splitlines()[0]
    except (OSError, IndexError):
        return {}
    fields = dict(item.split("=") for item in line.split()[1:])
    return {key: float(fields[key]) for key in ("avg10", "avg60", "avg300")}


def tree(pid: int) -> list[psutil.Process]:
    """``pid`` and its live descendants."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def label(proc: psutil.Process, root: int) -> str:
    """``server`` for the root, the module of ``python -m MODULE`` (the journal mover), else
    the process name (``fmnist serve --workers N``'s workers)."""
    if proc.pid == root:
        return "server"
    cmdline = proc.cmdline()
    if "-m" in cmdline[:-1]:
        return str(cmdline[cmdline.index("-m") + 1]).rsplit(".", 1)[-1]
    return str(proc.name())


@dataclass(frozen=True)
class Sample:
    """The tree at one moment."""

    time: float
    """Unix time."""
    rss: int
    """Resident set size of the tree, bytes."""
    cpu_s: float
    """CPU seconds (user + system) of the live processes of the tree."""
    rss_by_process: dict[str, int]
    """Resident set size per :func:`label` (summed over processes of the same label)."""


def tree_sample(pid: int) -> Sample:
    """One :class:`Sample` of ``pid``'s tree now."""
    cpu, parts = 0.0, Counter[str]()
    for proc in tree(pid):
        try:
            with proc.oneshot():
                parts[label(proc, pid)] += proc.memory_info().rss
                times = proc.cpu_times()
                cpu += times.user + times.system
        except psutil.NoSuchProcess:  # a child that ended between listing and reading
            continue
    return Sample(time.time(), sum(parts.values()), cpu, dict(parts))


class TreeSampler(threading.Thread):
    """Samples ``pid``'s tree every ``interval_s`` seconds in the background."""

    def __init__(self, pid: int, interval_s: float = 1.0) -> None:
        """Sample ``pid``'s tree; call :meth:`start`, then :meth:`finish`."""
        super().__init__(name="soak-sampler", daemon=True)
        self.pid = pid
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Sample until :meth:`finish` (the first sample at once)."""
        while True:
            self.samples.append(tree_sample(self.pid))
            if self._stop_event.wait(self.interval_s):
                return

    def finish(self) -> list[Sample]:
        """Stop, take a last sample and return them all."""
        self._stop_event.set()
        self.join()
        self.samples.append(tree_sample(self.pid))
        return self.samples
