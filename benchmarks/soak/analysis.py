"""The soak's figures from the locustfile's per-request record, the memory samples and the
exported prediction log: latency per request type, rate, failures, availability against the
SLO, memory growth after warm-up and the completeness of the prediction log."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soak.sampling import Sample

OVERALL = "overall"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Request:
    """One request as the locustfile recorded it."""

    start: float
    """Unix time the request was sent."""
    name: str
    """The request type (the locustfile's task)."""
    path: str
    status: int
    """HTTP status; 0 when no answer came (connection error)."""
    ms: float
    ok: bool
    """The answer was the expected one (status, body, one id per input)."""
    ids: tuple[str, ...]
    """The prediction ids the answer acknowledged (predictions and explanations)."""

    @property
    def bad_for_slo(self) -> bool:
        """A 5xx or no answer: what the availability SLO counts against its budget."""
        return self.status == 0 or self.status >= 500


def read_record(path: Path) -> list[Request]:
    """The requests of the locustfile's ``--record`` file, in start order."""
    rows = []
    for line in path.read_text().splitlines():
        start, name, route, status, ms, ok, ids = line.split("\t")
        rows.append(
            Request(
                float(start),
                name,
                route,
                int(status),
                float(ms),
                ok == "1",
                tuple(filter(None, ids.split(","))),
            )
        )
    rows.sort(key=lambda r: r.start)
    return rows


def _ms(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else float("nan")


def latency(rows: Sequence[Request], seconds: float) -> dict[str, Any]:
    """Count, failures, requests/s and p50/p95/p99/max ms of ``rows``."""
    ms = [r.ms for r in rows]
    return {
        "requests": len(rows),
        "failures": sum(not r.ok for r in rows),
        "rps": round(len(rows) / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": _ms(ms, 50),
        "p95_ms": _ms(ms, 95),
        "p99_ms": _ms(ms, 99),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
    }


def span(rows: Sequence[Request]) -> float:
    """Seconds from the first request sent to the last answer."""
    if not rows:
        return 0.0
    return max(r.start + r.ms / 1000 for r in rows) - rows[0].start


def grouped(rows: Sequence[Request], key: str) -> dict[str, dict[str, Any]]:
    """:func:`latency` per value of the request attribute ``key`` (``name``: request type,
    ``path``: route) and over all, each over the whole run."""
    seconds = span(rows)
    groups: dict[str, list[Request]] = {}
    for row in rows:
        groups.setdefault(getattr(row, key), []).append(row)
    figures = {group: latency(groups[group], seconds) for group in sorted(groups)}
    figures[OVERALL] = latency(rows, seconds)
    return figures


def windows(rows: Sequence[Request], count: int) -> list[dict[str, Any]]:
    """The run cut into ``count`` equal windows: requests/s, p95, failures of each."""
    if not rows:
        return []
    start, width = rows[0].start, span(rows) / count
    out = []
    for i in range(count):
        low, high = start + i * width, start + (i + 1) * width
        chosen = [r for r in rows if low <= r.start < high or (i == count - 1 and r.start >= high)]
        figures = latency(chosen, width)
        out.append(
            {
                "from_s": round(i * width, 1),
                **{k: figures[k] for k in ("rps", "p95_ms", "p99_ms", "failures")},
            }
        )
    return out


def failures(rows: Iterable[Request]) -> dict[str, int]:
    """Failed requests by ``type status`` (status 0: no answer)."""
    return dict(Counter(f"{r.name} {r.status}" for r in rows if not r.ok))


def availability(rows: Sequence[Request], objective: float) -> dict[str, Any]:
    """The share of requests answered without a 5xx (the SLO's definition) against
    ``objective``, and the part of the error budget the soak consumed."""
    bad = sum(r.bad_for_slo for r in rows)
    total = len(rows)
    allowed = (1 - objective) * total
    return {
        "objective": objective,
        "requests": total,
        "bad_requests": bad,
        "availability": round(1 - bad / total, 6) if total else float("nan"),
        "error_budget_requests": round(allowed, 1),
        "error_budget_consumed": round(bad / allowed, 4) if allowed else float("nan"),
        "met": total > 0 and bad <= allowed,
    }


def _median_mib(values: Sequence[float]) -> float:
    return round(float(np.median(values)) / MIB, 1)


def memory_growth(
    samples: Sequence[Sample],
    start: float,
    warmup_s: float,
    window_s: float = 5.0,
    points: int = 60,
) -> dict[str, Any]:
    """Resident memory of the server tree after warm-up against at the end, in all and per
    process, and about ``points`` of the samples (seconds from ``start``, MiB).

    The value after warm-up is the median of the samples in the ``window_s`` seconds that end
    ``warmup_s`` after ``start`` (or the first sample after it); the end value the median of
    the last ``window_s`` seconds.
    """
    warm = start + warmup_s
    base = [s for s in samples if warm - window_s < s.time <= warm]
    base = base or [s for s in samples if s.time >= warm][:1]
    end = [s for s in samples if s.time >= samples[-1].time - window_s]
    baseline, final = np.median([s.rss for s in base]), np.median([s.rss for s in end])
    names = sorted({name for s in samples for name in s.rss_by_process})
    step = max(1, len(samples) // points)
    return {
        "warmup_s": round(warmup_s, 1),
        "samples": len(samples),
        "rss_start_mib": round(samples[0].rss / MIB, 1),
        "rss_after_warmup_mib": round(float(baseline) / MIB, 1),
        "rss_end_mib": round(float(final) / MIB, 1),
        "rss_max_mib": round(max(s.rss for s in samples) / MIB, 1),
        "growth": round(float(final / baseline) - 1, 4),
        "by_process_mib": {
            name: {
                "after_warmup": _median_mib([s.rss_by_process.get(name, 0) for s in base]),
                "end": _median_mib([s.rss_by_process.get(name, 0) for s in end]),
            }
            for name in names
        },
        "series_mib": [[round(s.time - start, 1), round(s.rss / MIB, 1)] for s in samples[::step]],
    }


def completeness(rows: Iterable[Request], logged: Iterable[str]) -> dict[str, Any]:
    """Whether every acknowledged prediction id is in the prediction log."""
    acknowledged = {i for r in rows if r.ok for i in r.ids}
    logged_ids = set(logged)
    missing = sorted(acknowledged - logged_ids)
    return {
        "acknowledged_ids": len(acknowledged),
        "logged_records": len(logged_ids),
        "missing": len(missing),
        "missing_examples": missing[:5],
        "complete": not missing and bool(acknowledged),
    }
