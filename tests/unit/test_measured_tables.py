"""The generators of the README's headline table and of the measured sections of the data and
lifecycle pages: what they render from result files, and what they say without them."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_docs_figures import figures

REPO = Path(__file__).resolve().parents[2]


readme = figures.load("readme_measured.py")
default_model = figures.load("default_model.py")
lifecycle = figures.load("lifecycle_report.py")
bench_data = figures.load("bench_data.py")

CLASSES = ["A", "B", "C"]


def _evaluation() -> dict[str, Any]:
    return {
        "n": 30,
        "accuracy": 0.9,
        "top2_accuracy": 0.97,
        "macro_f1": 0.89,
        "per_class": [
            {"name": "A", "precision": 0.9, "recall": 0.95, "f1": 0.92, "support": 10},
            {"name": "B", "precision": 0.8, "recall": 0.70, "f1": 0.75, "support": 10},
            {"name": "C", "precision": 0.99, "recall": 0.99, "f1": 0.99, "support": 10},
        ],
        # row B: 7 right, 2 taken for A, 1 for C
        "confusion": [[9, 1, 0], [2, 7, 1], [0, 0, 10]],
        "ece": 0.012,
        "ece_before_temperature": 0.09,
        "temperature": 0.61,
        "recall_disparity": 0.29,
        "robustness": {
            "clean": 0.9,
            "gaussian_noise": 0.7,
            "blur": 0.6,
            "brightness": 0.5,
            "contrast": 0.8,
            "rotation": 0.85,
            "shift": 0.88,
        },
    }


def _result() -> dict[str, Any]:
    return {
        "measured_at": "2026-12-07T02:33:30+00:00",
        "produced_by": "fmnist pipeline run",
        "run_id": "0123456789abcdef",
        "registered_model": "fmnist-classifier",
        "version": 3,
        "config_hash": "2d0bc39a49e4",
        "preset": "default",
        "machine": {
            "cpu": "Some CPU",
            "cores": "2",
            "python": "3.11.7",
            "torch": "2.13.0",
            "onnxruntime": "1.32.0",
        },
        "training": {
            "parameters": 298410,
            "epochs": 14,
            "precision": "bf16",
            "threads": 2,
            "train_seconds": 250.0,
            "epoch_seconds_median": 17.9,
            "best_val_accuracy": 0.94,
        },
        "onnx_parity": {"images": 1000, "max_prob_diff": 6.8e-07, "argmax_agreement": 1.0},
        "gates": {
            "passed": True,
            "reasons": "",
            "compared_with_champion": "none",
            "aliases": ["champion"],
        },
        "evaluation": _evaluation(),
        "quantization": {
            "int8_accuracy": 0.9001,
            "accuracy_drop_points": -0.01,
            "accepted": True,
            "batch_size": 256,
            "threads": 1,
            "fp32_ms_per_image": 0.36,
            "int8_ms_per_image": 0.14,
            "speedup": 2.57,
            "fp32_mb": 1.23,
            "int8_mb": 0.38,
        },
    }


def _cells(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return [row.strip("| ").split(" | ") for row in rows[1:]]


def test_readme_table_without_result_files_says_not_measured_and_types_no_figure() -> None:
    rows = _cells(readme.render({"kpis": {}}))
    assert len(rows) == len(readme.ROWS)
    for area, value, command, source, provenance in rows[:-1]:
        assert value.startswith(readme.NOT_MEASURED), area
        assert not re.search(r"\d", value), area  # no figure without its result file
        assert provenance == "–", area
        assert command.startswith("`") and source.startswith("`"), area
    assert rows[-1][1] == "0 of 9 measured, 0 met"


def test_every_measured_readme_row_names_its_date_and_machine() -> None:
    for area, value, _, _, provenance in _cells(readme.render(readme.load_results())):
        if value.startswith(readme.NOT_MEASURED) or area.startswith("[KPIs]"):
            continue
        assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", provenance), area
        assert "machine-independent" in provenance or "cores" in provenance, area


def test_readme_row_links_are_pages_of_the_repository() -> None:
    for make in readme.ROWS:
        page = make({"kpis": {}}).page.split("#")[0]
        assert (REPO / page).is_file(), page


def test_a_benchmark_refreshes_the_tables_that_read_every_result(monkeypatch: Any) -> None:
    called: list[list[str]] = []
    monkeypatch.setattr(figures, "write_sections", lambda names: called.append(list(names)))
    figures.refresh_after(figures.RESULTS / "data.json")
    assert set(figures.READS_EVERY_RESULT) | {"bench_data"} <= set(called[0])
    assert "bench_http" not in called[0]


def test_preset_of_a_config_hash() -> None:
    from fmnist.training.config import make_config

    assert default_model.preset_of(make_config("default").config_hash()) == "default"
    assert default_model.preset_of(make_config("quick").config_hash()) == "quick"
    assert default_model.preset_of("not-a-hash") is None


def test_weakest_class_and_its_confusions() -> None:
    weak, strong = default_model.recall_extremes(_evaluation())
    assert (weak["name"], strong["name"]) == ("B", "C")
    assert default_model.top_confusions(_evaluation(), "B") == [("A", 2), ("C", 1)]


def test_main_job_section_bolds_the_weakest_class_and_corruptions() -> None:
    text = default_model.render_main(_result())
    assert "| B | 0.800 | **0.700** | 0.750 |" in text
    assert "| A | 0.900 | 0.950 | 0.920 |" in text
    assert "| 0.9000 | 0.7000 | **0.6000** | **0.5000** | 0.8000 |" in text
    assert "most of its errors go to A (2), C (1)" in text
    assert "gain 0.01 points" in text
    assert "version 3 of `fmnist-classifier`: `champion`" in text
    assert "2026-12-07 02:33 UTC on Some CPU, 2 cores" in text


def test_a_rejected_int8_and_failed_gates_are_said() -> None:
    result = copy.deepcopy(_result())
    result["quantization"].update(accepted=False, accuracy_drop_points=0.5)
    result["gates"].update(passed=False, reasons="accuracy", aliases=[])
    rows = dict(default_model.summary_rows(result))
    assert rows["INT8 accuracy"].endswith("(drop 0.50 points): rejected")
    assert rows["gates"].startswith("failed (accuracy)")
    assert rows["gates"].endswith("no alias")


def test_training_table_targets_and_missing_rows() -> None:
    assert lifecycle.verdict("default", 0.94, 251.3).endswith(": met")
    assert lifecycle.verdict("default", 0.94, 301).endswith("**not met**")
    assert lifecycle.verdict("quick", 0.89, 30).endswith("**not met**")
    text = lifecycle.training(None, None)
    assert "`default`: not measured yet" in text and "`quick`: not measured yet" in text
    assert len(_cells(text)) == 0


def test_training_table_reads_an_older_quick_result_without_machine() -> None:
    quick = {
        "command": "python benchmarks/bench_train.py --preset quick",
        "epochs": 5,
        "parameters": 104426,
        "train_seconds": 37.9,
        "epoch_seconds_median": 7.47,
        "precision": "bf16",
        "threads": 2,
        "load_average_before": 0.73,
        "load_average_after": 0.8,
        "test_accuracy": 0.9235,
        "measured_at": "2026-11-27T05:00:00+00:00",
        "cpu": "AMD EPYC",
        "cores": 2,
    }
    (row,) = _cells(lifecycle.training([], quick))
    assert row[0] == "`quick`" and row[5] == "**0.9235**"
    assert row[6].endswith(": met") and row[7] == "2026-11-27 05:00 UTC, AMD EPYC, 2 cores"


def test_data_section_ratios_and_optional_command_times() -> None:
    path = REPO / "benchmarks" / "results" / "data.json"
    if not path.is_file():
        pytest.fail("benchmarks/results/data.json is committed; run benchmarks/bench_data.py")
    results = json.loads(path.read_text(encoding="utf-8"))
    results["snapshots"]["parquet"]["write"]["median_s"] = 1.0
    results["snapshots"]["npz"]["write"]["median_s"] = 2.5
    results["cli_wall_s"] = {"fetch": 1.0, "validate": 2.0, "snapshot": 3.0}
    text = bench_data.render(results)
    assert text.startswith(bench_data.BEGIN) and text.endswith(bench_data.END)
    assert "was 2.5x faster to write" in text
    assert "`fmnist data fetch` 1.00 s, `fmnist data validate` 2.00 s" in text
    del results["cli_wall_s"]
    assert "fmnist data fetch`" not in bench_data.render(results)


real_photos = figures.load("real_photos.py")
explain_report = figures.load("explain_report.py")


def _report(name: str, model: str, preprocessing: str, source: str, accuracy: float) -> Any:
    return {
        "name": name,
        "created": "2026-12-07T15:00:00+00:00",
        "photos_folder": "/x/clothing-photos/validation",
        "mapping": {"name": "clothing-small", "version": 1, "classes": {}},
        "model": {"reference": model, "name": model, "version": 2, "metadata": {"run_id": "r"}},
        "preprocessing": preprocessing,
        "abstention": {"min_confidence": 0.3, "energy_threshold": -1.3, "source": source},
        "fashion_mnist_test_accuracy": 0.94,
        "summary": {
            "photos": 10,
            "mappable_photos": 8,
            "unmappable_photos": 2,
            "mappable_accuracy": accuracy,
            "mappable_answered_accuracy": 0.9,
            "mappable_correct_answers": 0.7,
            "mappable_abstention": 0.125,
            "mappable_wrong_answers": 0.175,
            "unmappable_abstention": 0.5,
        },
        "per_class": {
            "pants": {"n": 4, "accuracy": 1.0, "abstention": 0.0, "answers": {}},
            "hat": {"n": 2, "abstention": 0.5, "answers": {}},
        },
        "cpu_timing": {"median_ms": 12.34},
        "targets": {
            "mappable_accuracy": {"target": ">= 75%", "value": accuracy, "met": accuracy >= 0.75},
            "unmappable_abstention": {"target": ">= 60%", "value": 0.5, "met": False},
            "mappable_abstention": {"target": "<= 15%", "value": 0.125, "met": True},
        },
    }


def test_real_photo_rows_name_the_models_rules_and_the_served_row() -> None:
    rows = [
        real_photos.row_of(_report("a", "m0.onnx", "naive", "Fashion-MNIST (x)", 0.1)),
        real_photos.row_of(_report("b", "fmnist-photos", "grabcut", "model", 0.8)),
        real_photos.row_of(_report("c", "fmnist-photos", "colour", "model", 0.7)),
    ]
    assert [(r["model"], r["rule"]) for r in rows] == [
        ("M0", "Fashion-MNIST thresholds"),
        ("M1", "calibrated"),
        ("M1", "calibrated"),
    ]
    results = {
        "measured_at": "2026-12-07T15:00:00+00:00",
        "machine": {"cpu": "Some CPU", "cores_usable": 2},
        "note": "A note.",
        "photos_folder": "validation",
        "mapping": {"name": "clothing-small", "version": 1},
        "rows": rows,
    }
    assert real_photos.served(results) is rows[1]
    text = real_photos.render(results)
    table = _cells(text.split("\n\n", 1)[1])
    assert table[1][0] == "**2**" and table[1][3].endswith("the served default**")
    assert table[0][4] == "10.0%" and table[2][0] == "3"
    target = next(line for line in text.splitlines() if "| target |" in line)
    assert "| >= 75% | >= 60% | <= 15% | | >= 93.50% (M0 - 0.5 points) |" in target
    assert "targets met: mappable accuracy, mappable abstention; not met: unmappable" in text
    assert "pants 100.0% / 0.0%" in text and "hat (no class) refused 50.0%" in text


def test_explanation_models_are_named_by_their_preset() -> None:
    assert explain_report.model_label({"model": "cnn", "model_options": {}}) == "`default` CNN"
    quick = {"widths": [32, 64, 128], "convs_per_stage": 1}
    assert explain_report.model_label({"model": "cnn", "model_options": quick}) == "`quick` CNN"
    assert explain_report.model_label({"model": "mlp", "model_options": {"hidden": 7}}).startswith(
        "mlp "
    )


def test_the_served_model_table_names_each_model_and_judges_both_targets() -> None:
    http_report = figures.load("http_report.py")

    def result(p95_fixed: float, peaks: list[tuple[int, float, float]], model: Any) -> Any:
        return {
            "measured_at": "2026-12-07T16:00:00+00:00",
            "machine": {"cpu": "CPU X", "cores_usable": 2},
            "targets": {
                "fixed_rate_p95_ms": 2.0,
                "throughput_rps": 2000.0,
                "throughput_p95_ms": 20,
            },
            "fixed_rate": {"rate_rps": 200.0, "p95_ms": p95_fixed},
            "peak": [{"connections": c, "rps": rps, "p95_ms": p95} for c, rps, p95 in peaks],
            "verdict": {
                "fixed_rate_p95_ok": p95_fixed <= 2.0,
                "throughput_ok": any(rps >= 2000 and p95 < 20 for _, rps, p95 in peaks),
            },
            **({"model": model} if model else {}),
        }

    default = {"name": "fmnist-classifier", "version": 3, "architecture": "cnn"}
    default |= {"widths": "default", "parameters": 298410, "test_accuracy": 0.9406}
    served = result(5.4, [(1, 500.0, 2.5), (8, 850.0, 12.0), (32, 900.0, 45.0)], default)
    quick = result(1.9, [(8, 2100.0, 9.0), (32, 2200.0, 25.0)], None)
    table = http_report.render_served(served, quick)
    served_row, quick_row = table.splitlines()[-3:-1]
    assert "fmnist-classifier v3 (cnn, widths default, 298,410 parameters" in served_row
    assert "850 requests/s (p95 12.0 ms, 8 connections)" in served_row
    assert "**not met**" in served_row
    assert "predates the model field" in quick_row
    assert "2,100 requests/s (p95 9.0 ms, 8 connections)" in quick_row
    assert "| met |" in quick_row


def test_the_serving_section_shows_the_inline_phase_only_when_measured() -> None:
    http_report = figures.load("http_report.py")
    results = json.loads((figures.REPO / "benchmarks/results/http.json").read_text())
    results.pop("inline", None)
    assert "inference thread" not in http_report.render_section(results)

    lone = copy.deepcopy(results["peak"][0])
    off = lone | {"rps": lone["rps"] / 2, "server_cpu_ms_per_request": 3.5}
    results["inline"] = {"connections": 1, "on": lone, "off": off, "on_over_off_rps": 2.0}
    section = http_report.render_section(results)
    assert "| log on: peak, 1, lone requests on the inference thread |" in section
    assert "(2.00x)" in section and "against 3.50 ms per request" in section


def test_the_cost_contract_quotes_the_fastest_peak_within_the_p95_bar() -> None:
    http_report = figures.load("http_report.py")
    targets = {"throughput_p95_ms": 20.0}
    within = {"rps": 2023.0, "p95_ms": 13.1, "connections": 16}
    over = {"rps": 2078.0, "p95_ms": 23.4, "connections": 32}
    slow = {"rps": 1891.0, "p95_ms": 7.5, "connections": 8}
    assert http_report.headline_peak([slow, within, over], targets) is within
    assert http_report.headline_peak([over], targets) is over  # none within: the fastest
