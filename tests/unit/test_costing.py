"""The cost model (``fmnist.costing``) on hand-checkable cases, and ``fmnist cost report`` on the
committed result files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist.cli import app
from fmnist.costing import analysis
from fmnist.costing.errors import CostInputError
from fmnist.costing.inputs import Capacity
from fmnist.costing.prices import Prices, load_prices, parse_prices
from fmnist.costing.profile import SECONDS_PER_DAY, TrafficProfile, flat
from fmnist.costing.serving import (
    ServingAssumptions,
    gke_allocatable,
    hourly,
    instances_for,
    platform_day,
    pods_per_node,
)

REPO = Path(__file__).resolve().parents[2]
PRICES = REPO / "benchmarks" / "prices" / "gcp.json"
RESULTS = REPO / "benchmarks" / "results"


@pytest.fixture(scope="module")
def prices() -> Prices:
    return load_prices(PRICES)


CAP = Capacity("test", cpu_ms_per_request=2.0, rps_per_vcpu=500.0, service_time_ms=2.0)


def _entry(**over: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "value": 1.0,
        "unit": "USD per hour",
        "what": "x",
        "as_published": "2024-06",
        "source": "https://cloud.google.com/x",
    }
    return entry | over


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_entry(value=-1), "must be finite and >= 0"),
        (_entry(value="1"), "non-numeric"),
        (_entry(as_published="June 2024"), "as_published"),
        (_entry(source="cloud.google.com"), "https://"),
        ({"value": 1.0}, "lacks"),
    ],
)
def test_price_validation_names_the_file_and_entry(entry: object, message: str) -> None:
    with pytest.raises(CostInputError, match=message) as info:
        parse_prices({"prices": {"p": entry}}, Path("prices.json"))
    assert "prices.json" in str(info.value) and "'p'" in str(info.value)


def test_a_missing_price_is_an_error_naming_it() -> None:
    p = parse_prices({"prices": {"a": _entry()}}, Path("x.json"))
    assert p["a"] == 1.0
    with pytest.raises(CostInputError, match="lacks 'b'"):
        p["b"]


def test_committed_prices_are_valid_and_dated(prices: Prices) -> None:
    assert len(prices.entries) >= 30
    assert all(e.source.startswith("https://cloud.google.com/") for e in prices.entries.values())


def test_instance_count_math() -> None:
    assert instances_for(0, 300, 1) == 1
    assert instances_for(0, 300, 0) == 0
    assert instances_for(300, 300, 1) == 1
    assert instances_for(301, 300, 1) == 2
    assert instances_for(900, 300, 0) == 3


def test_diurnal_profile_keeps_the_mean_and_states_the_peak() -> None:
    profile = TrafficProfile(1_000_000, peak_factor=2.0)
    hours = profile.hourly_rps()
    assert len(hours) == 24
    assert math.isclose(sum(hours) / 24, 1_000_000 / SECONDS_PER_DAY)
    assert math.isclose(profile.peak_rps, 2 * profile.mean_rps)
    assert min(hours) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="peak factor"):
        TrafficProfile(1000, peak_factor=3.0)


def test_cloud_run_instances_follow_capacity_at_the_target(prices: Prices) -> None:
    a = ServingAssumptions(target_utilisation=0.5)  # 1 vCPU x 500 req/s x 0.5 = 250 per instance
    _, units = hourly("cloud_run", 1000.0, CAP, prices, a)
    assert units == 4
    _, units = hourly("cloud_run", 1001.0, CAP, prices, a)
    assert units == 5
    costs, units = hourly("cloud_run_min0", 0.0, CAP, prices, a)
    assert units == 0 and sum(costs.values()) == 0.0


def test_instance_based_billing_is_flat_per_instance(prices: Prices) -> None:
    a = ServingAssumptions()
    costs, units = hourly("cloud_run_instance_billing", 1.0, CAP, prices, a)
    per_s = (
        prices["cloud_run_instance_cpu_vcpu_second"]
        + 2 * prices["cloud_run_instance_memory_gib_second"]
    )
    assert units == 1
    assert costs["cloud_run_instances"] == pytest.approx(per_s * 3600)


def test_gke_bin_packing() -> None:
    cpu, mem = gke_allocatable(4, 16.0)
    assert cpu == pytest.approx(4 - (0.06 + 0.01 + 2 * 0.005))
    assert mem == pytest.approx(16 - (1 + 0.8 + 0.8) - 100 / 1024)
    a = ServingAssumptions(pod_cpu=1.0, pod_memory_gib=2.0, daemonset_cpu=0.3)
    assert pods_per_node(a) == 3  # (3.92 - 0.3) / 1 = 3.62 vCPU -> 3 pods; memory fits 6
    big = ServingAssumptions(pod_cpu=0.5, pod_memory_gib=6.0)
    assert pods_per_node(big) == 2  # memory-bound: (13.3 - 0.5) / 6


def test_vm_is_sized_for_the_peak_and_billed_all_day(prices: Prices) -> None:
    a = ServingAssumptions()
    # 2 vCPU x 500 x 0.6 = 600 req/s per VM; a peak of 2x 400 = 800 needs 2
    day = platform_day(
        "vm_e2-standard-2", TrafficProfile(400 * SECONDS_PER_DAY, 2.0), CAP, prices, a
    )
    assert day["peak_units"] == 2
    disk = a.vm_disk_gib * prices["compute_pd_balanced_gib_month"] / 730
    assert day["usd_per_day"] == pytest.approx(
        24 * 2 * (prices["compute_e2_standard_2_hour"] + disk)
    )


def test_cost_per_1000_falls_with_traffic_for_fixed_cost_platforms(prices: Prices) -> None:
    a = ServingAssumptions()
    for name in ("vm_e2-standard-2", "vertex_e2-standard-2", "gke_standard"):
        low = platform_day(name, flat(1.0), CAP, prices, a)["usd_per_1000"]
        high = platform_day(name, flat(100.0), CAP, prices, a)["usd_per_1000"]
        assert high < low


def test_break_even_is_the_first_point_from_which_an_option_stays_cheaper() -> None:
    points = [1.0, 10.0, 100.0, 1000.0]
    assert analysis.first_from(points, [False, True, False, True]) == 1000.0
    assert analysis.first_from(points, [False, True, True, True]) == 10.0
    assert analysis.first_from(points, [True, True, True, True]) == 1.0
    assert analysis.first_from(points, [True, True, True, False]) is None


def test_break_evens_are_monotone_in_the_fixed_price(prices: Prices) -> None:
    """A dearer always-on VM breaks even with Cloud Run at a higher traffic."""
    from fmnist.costing.datapath import DataPathAssumptions

    profile = TrafficProfile(1_000_000)
    a = ServingAssumptions()
    event = (550, 159)
    cheap = analysis.break_evens(
        analysis.curves(profile, CAP, prices, a, DataPathAssumptions(), event)
    )
    dear = Prices(dict(prices.entries), prices.path)
    entry = dear.entries["compute_e2_standard_2_hour"]
    dear.entries["compute_e2_standard_2_hour"] = type(entry)(
        **{**entry.__dict__, "value": entry.value * 2}
    )
    costly = analysis.break_evens(
        analysis.curves(profile, CAP, dear, a, DataPathAssumptions(), event)
    )
    assert cheap["vm_e2-standard-2"] is not None and costly["vm_e2-standard-2"] is not None
    assert costly["vm_e2-standard-2"] > cheap["vm_e2-standard-2"]


def _need_results() -> None:
    missing = [p for p in ("http.json", "variants.json") if not (RESULTS / p).is_file()]
    assert not missing, f"committed result files missing: {missing}"


def _inputs(**over: Path) -> list[str]:
    """Every input option, pointing at the committed files (the tests' cwd is elsewhere)."""
    paths = {
        "--prices": PRICES,
        "--variants": RESULTS / "variants.json",
        "--http": RESULTS / "http.json",
        "--training": REPO / "docs" / "benchmarks.json",
        "--serve-only": RESULTS / "serve_only.json",
    } | {f"--{k.replace('_', '-')}": v for k, v in over.items()}
    return [x for k, v in paths.items() for x in (k, str(v))]


def test_cli_report_writes_tables_json_markdown_and_pngs(tmp_path: Path) -> None:
    _need_results()
    result = CliRunner().invoke(
        app,
        ["cost", "report", *_inputs(), "--out", str(tmp_path), "--traffic-per-day", "2000000"],
    )
    assert result.exit_code == 0, result.output
    assert "serving USD per 1,000 predictions at 2 M/day" in result.output
    data = json.loads((tmp_path / "cost.json").read_text())
    assert data["profile"]["per_day"] == 2_000_000
    assert {"cnn-fp32", "cnn-int8", "ensemble-fp32"} <= set(data["serving"]["profile"])
    # the keys the KPI table reads
    assert data["levels"][0]["options"]["cloud_run"]["total_usd_per_prediction"] > 0
    assert data["throughput"]["measured_at"] and data["kpi_usd_per_prediction"] == 0.001
    report = (tmp_path / "cost-report.md").read_text()
    assert "### Break-even points" in report and "](cost_vs_traffic.png)" in report
    for name in ("cost_vs_traffic", "variants", "monthly_breakdown", "training"):
        png = (tmp_path / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) < 300_000


def test_cli_names_a_missing_or_invalid_input(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = CliRunner().invoke(
        app, ["cost", "report", *_inputs(prices=missing), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "nope.json is missing" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(
        app, ["cost", "report", *_inputs(variants=bad), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "bad.json is not valid JSON" in result.output
