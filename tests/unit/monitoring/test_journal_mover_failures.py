"""The journal mover's failed passes: backoff and a log that does not flood."""

from __future__ import annotations

import logging

import pytest

from fmnist.monitoring.journal_mover import MAX_RETRY_DELAY_S, REPORT_INTERVAL_S, FailedPasses


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_failures_are_logged_once_per_interval_with_their_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failures = FailedPasses(0.2, clock=clock)
    caplog.set_level(logging.WARNING, logger="fmnist.monitoring.journal_mover")
    for _ in range(50):  # ten seconds of passes five times a second
        failures.failed(OSError(28, "No space left on device"))
        clock.now += 0.2
    assert len(caplog.records) == 1
    assert caplog.records[0].exc_info is not None  # the first failure, with its traceback
    clock.now = REPORT_INTERVAL_S + 1
    failures.failed(OSError(28, "No space left on device"))
    assert len(caplog.records) == 2
    assert "50 failed passes since the last report, 51 in all" in caplog.records[1].getMessage()
    failures.succeeded()
    assert "resumed after 51 failed passes" in caplog.records[2].getMessage()
    failures.succeeded()  # a pass after a pass: nothing to say
    assert len(caplog.records) == 3
    failures.failed(OSError(30, "Read-only file system"))  # a new episode: reported at once
    assert len(caplog.records) == 4 and caplog.records[3].exc_info is not None


def test_the_pause_doubles_per_failure_up_to_the_cap() -> None:
    failures = FailedPasses(0.2)
    assert failures.delay() == 0.2
    delays = []
    for _ in range(40):
        failures.failed(OSError("locked"))
        delays.append(failures.delay())
    assert delays[:3] == pytest.approx([0.4, 0.8, 1.6])
    assert delays == sorted(delays) and delays[-1] == MAX_RETRY_DELAY_S
    failures.succeeded()
    assert failures.delay() == 0.2
