"""The live-accuracy refresh of ``POST /v1/feedback``: at most one scan per interval per model,
the last label of a burst never left out, deferred scans on one thread."""

from __future__ import annotations

import threading
import time

from fmnist.serving.feedback_routes import CoalescedRefresh


class Recorder:
    """An action that records its calls (key, time, thread) and signals every ``n``-th."""

    def __init__(self, n: int) -> None:
        self.calls: list[tuple[str, float, int]] = []
        self.n = n
        self.reached = threading.Event()

    def __call__(self, key: str) -> None:
        self.calls.append((key, time.monotonic(), threading.get_ident()))
        if len(self.calls) == self.n:
            self.reached.set()

    def keys(self) -> list[str]:
        return [key for key, _, _ in self.calls]


def test_calls_within_the_interval_coalesce_into_one_later_run() -> None:
    action = Recorder(n=3)
    refresh = CoalescedRefresh(action, interval_s=0.2)
    started = time.monotonic()
    refresh("a")  # at once, on the caller's thread
    assert action.keys() == ["a"] and action.calls[0][2] == threading.get_ident()
    for _ in range(50):  # a burst: one deferred run
        refresh("a")
    refresh("b")  # another key is not held back by the first
    assert action.keys() == ["a", "b"]
    assert action.reached.wait(5)
    time.sleep(0.3)  # nothing else was queued
    assert action.keys() == ["a", "b", "a"]
    assert action.calls[2][1] - started >= 0.2
    time.sleep(0.2)
    refresh("a")  # the interval has passed: at once again
    assert len(action.calls) == 4


def test_deferred_runs_share_one_thread() -> None:
    action = Recorder(n=6)
    refresh = CoalescedRefresh(action, interval_s=0.05)
    for _ in range(3):
        refresh("a")  # at once
        refresh("a")  # deferred
        time.sleep(0.12)
    assert action.reached.wait(5)
    deferred = {thread for _, _, thread in action.calls[1::2]}
    assert len(deferred) == 1 and threading.get_ident() not in deferred


def test_a_failing_deferred_run_does_not_stop_later_ones() -> None:
    calls: list[str] = []
    second = threading.Event()

    def action(key: str) -> None:
        calls.append(key)
        if len(calls) == 2:
            second.set()
            raise RuntimeError("database gone")

    refresh = CoalescedRefresh(action, interval_s=0.05)
    refresh("a")
    refresh("a")
    assert second.wait(5)
    time.sleep(0.1)
    refresh("a")
    assert calls == ["a", "a", "a"]
