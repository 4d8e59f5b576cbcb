"""Which soak checks decide ``benchmarks/bench_soak.py``'s exit status."""

from __future__ import annotations

from tests.unit.test_docs_figures import figures

bench_soak = figures.load("bench_soak.py")

ALL_PASS = {
    "zero_failures": True,
    "p95_within_serving_bar": True,
    "explain_p95_within_bar": True,
    "memory_growth_ok": True,
    "prediction_log_complete": True,
    "availability_slo_met": True,
    "rate_held": True,
}


def test_the_serving_bar_gates_the_benchmark() -> None:
    checks = ALL_PASS | {"p95_within_serving_bar": False}
    gating = bench_soak.gating_checks(checks, latency_reported_only=False)
    assert gating["p95_within_serving_bar"] is False
    assert "explain_p95_within_bar" not in gating  # its own bar is reported, never gating


def test_latency_reported_only_keeps_every_other_check() -> None:
    checks = ALL_PASS | {"p95_within_serving_bar": False, "explain_p95_within_bar": False}
    gating = bench_soak.gating_checks(checks, latency_reported_only=True)
    assert gating == {k: True for k in ALL_PASS if k not in bench_soak.LATENCY_CHECKS}
    failing = bench_soak.gating_checks(checks | {"rate_held": False}, latency_reported_only=True)
    assert failing["rate_held"] is False
