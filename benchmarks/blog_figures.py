"""The figures of the technical blog post (``docs/blog.md``), rendered from the result files.

The post's prose carries no typed measurement: each block between ``<!-- blog_NAME: begin -->``
and ``<!-- blog_NAME: end -->`` is rendered here from the result files its benchmark wrote, with
the date and the machine of the measurement, and ``benchmarks/figures.py`` lists the blocks
(``python benchmarks/figures.py blog_http`` re-renders one; ``--check`` finds stale ones).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

INPUTS: dict[str, tuple[str, ...]] = {
    "blog_onnx": ("benchmarks/results/onnx.json", "benchmarks/results/default_model.json"),
    "blog_http": ("benchmarks/results/http.json",),
    "blog_models": ("docs/benchmarks.json",),
    "blog_drift": ("benchmarks/results/drift.json",),
    "blog_ab": ("benchmarks/results/ab.json",),
    "blog_reliability": ("benchmarks/results/fuzz.json", "benchmarks/results/soak.json"),
    "blog_cost": ("benchmarks/results/cost.json",),
}
"""Each block of the post and the result files it is rendered from."""


def _read(relpath: str) -> Any:
    return json.loads((REPO / relpath).read_text(encoding="utf-8"))


def _when(stamp: str) -> str:
    return stamp[:16].replace("T", " ") + " UTC"


def _machine(m: dict[str, Any]) -> str:
    cores = m.get("cores_usable") or m.get("cores")
    return f"{m['cpu']}, {cores} cores"


def _source(relpath: str, stamp: str, machine: dict[str, Any] | None, command: str) -> str:
    where = f" on {_machine(machine)}" if machine else ""
    return f"*`{relpath}`, measured {_when(stamp)}{where} by `{command}`.*"


def _ms(value: float) -> str:
    return f"{value:.3f} ms" if value < 1 else f"{value:.1f} ms"


def onnx() -> list[str]:
    """PyTorch eager against ONNX Runtime (FP32, INT8), and INT8 on the default model."""
    o, d = _read(INPUTS["blog_onnx"][0]), _read(INPUTS["blog_onnx"][1])
    e = o["engines"]
    eager, ort, int8 = e["pytorch eager fp32"], e["onnxruntime fp32"], e["onnxruntime int8"]
    q = d["quantization"]
    lines = [
        f"| engine ({o['model']}, {o['threads']} thread) | batch 1 latency | batch 256 "
        "throughput | vs eager at batch 1 | vs eager at batch 256 |",
        "|---|---:|---:|---:|---:|",
    ]
    engines = (("PyTorch eager FP32", eager), ("ONNX Runtime FP32", ort))
    for name, row in (*engines, ("ONNX Runtime INT8", int8)):
        lines.append(
            f"| {name} | {_ms(row['batch1_latency_ms'])} | "
            f"{row['batch256_images_per_s']:,.0f} images/s | "
            f"{eager['batch1_latency_ms'] / row['batch1_latency_ms']:.1f}x | "
            f"{row['batch256_images_per_s'] / eager['batch256_images_per_s']:.1f}x |"
        )
    lines += [
        "",
        _source(
            INPUTS["blog_onnx"][0],
            o["measured_at"],
            o["machine"],
            "python benchmarks/bench_onnx.py",
        ),
        "",
        f"| the default model ({d['preset']} preset), {q['n']:,} test images | FP32 | INT8 |",
        "|---|---:|---:|",
        f"| accuracy | {q['fp32_accuracy']:.2%} | {q['int8_accuracy']:.2%} |",
        f"| time per image at batch {q['batch_size']}, {q['threads']} thread | "
        f"{_ms(q['fp32_ms_per_image'])} | {_ms(q['int8_ms_per_image'])} "
        f"({q['speedup']:.2f}x faster) |",
        f"| model file | {q['fp32_mb']:.2f} MB | {q['int8_mb']:.2f} MB |",
        f"| same top class as FP32 | | {q['prediction_agreement']:.2%} |",
        "",
        f"INT8 is accepted when it loses at most {q['max_drop_points']} points: "
        f"{'accepted' if q['accepted'] else 'refused'} "
        f"({q['accuracy_drop_points']:+.2f} points).",
        "",
        _source(INPUTS["blog_onnx"][1], d["measured_at"], d["machine"], d["command"]),
    ]
    return lines


def http() -> list[str]:
    """The served API: light load, peak, micro-batching, the prediction log, two workers."""
    h = _read(INPUTS["blog_http"][0])
    t, f, v = h["targets"], h["fixed_rate"], h["verdict"]
    peaks = {p["connections"]: p for p in h["peak"]}
    mb, log = h["microbatching"], h["prediction_log"]
    rows = h["peak"] + [mb["on"]] + h["two_workers"]
    within = [p for p in rows if p["p95_ms"] < t["throughput_p95_ms"]]
    best = max(within or rows, key=lambda p: p["rps"])
    met = v["throughput_ok"] or v.get("two_workers_throughput_ok", False)
    lines = [
        "| load | requests/s | p50 | p95 | target | met |",
        "|---|---:|---:|---:|---|---|",
        f"| fixed rate, {f['rate_rps']:.0f} requests/s for {f['duration_s']:.0f} s | "
        f"{f['achieved_rps']:.0f} | {_ms(f['p50_ms'])} | {_ms(f['p95_ms'])} | "
        f"p95 {t['fixed_rate_p95_ms']:g} ms | {'yes' if v['fixed_rate_p95_ok'] else 'no'} |",
    ]
    for c, p in sorted(peaks.items()):
        if c == mb["connections"]:
            continue  # the micro-batching rows below
        lines.append(
            f"| closed loop, {c} connection{'s' if c > 1 else ''} | {p['rps']:,.0f} | "
            f"{_ms(p['p50_ms'])} | {_ms(p['p95_ms'])} | | |"
        )
    for label, p in (("on", mb["on"]), ("off", mb["off"])):
        lines.append(
            f"| {mb['connections']} connections, micro-batching {label} | {p['rps']:,.0f} | "
            f"{_ms(p['p50_ms'])} | {_ms(p['p95_ms'])} | | |"
        )
    for p in h["two_workers"]:
        lines.append(
            f"| two workers, {p['connections']} connections | {p['rps']:,.0f} | "
            f"{_ms(p['p50_ms'])} | {_ms(p['p95_ms'])} | | |"
        )
    lines += [
        f"| **the throughput target** | {t['throughput_rps']:,.0f} | | p95 "
        f"{t['throughput_p95_ms']:g} ms | {t['throughput_rps']:,.0f} requests/s at p95 "
        f"{t['throughput_p95_ms']:g} ms | {'yes' if met else 'no'} (best"
        f"{' within the p95 bar' if within else ''}: {best['rps']:,.0f}, p95 "
        f"{_ms(best['p95_ms'])}) |",
        "",
        f"Micro-batching at {mb['connections']} connections: {mb['on_over_off_rps']:.2f}x the "
        f"requests/s of one request per model call. The durable prediction log costs "
        f"{log['throughput_overhead']:.1%} of peak throughput (median of "
        f"{len(log['ab_rounds']['on'])} alternating rounds, "
        f"{log['ab_median_rps']['on']:,.0f} against {log['ab_median_rps']['off']:,.0f} "
        f"requests/s; the bar is {t['prediction_log_max_throughput_overhead']:.0%}) and "
        f"{log['fixed_rate_p95_on_minus_off_ms']:+.3f} ms of p95 at the fixed rate. Errors in "
        f"every run: {'none' if v['zero_errors'] and v['fixed_rate_zero_errors'] else 'some'}.",
        "",
        _source(
            INPUTS["blog_http"][0],
            h["measured_at"],
            h["machine"],
            "python benchmarks/bench_http.py",
        )
        + f" *{h['setup']}.*",
    ]
    return lines


def models() -> list[str]:
    """The leaderboard's best rows against the model-zoo targets."""
    from fmnist.pipelines.leaderboard_page import TARGETS

    rows = _read(INPUTS["blog_models"][0])
    lines = [
        "| target | minimum | best measured | training time | met |",
        "|---|---:|---|---:|---|",
    ]
    for what, which, minimum in TARGETS:
        pool = [
            r
            for r in rows
            if (which == "single" and r["kind"] == "neural")
            or (which == "ensemble" and r["kind"] == "ensemble")
            or r["model"] == which
        ]
        best = max(pool, key=lambda r: r["test_accuracy"])
        gap = (minimum - best["test_accuracy"]) * 100
        lines.append(
            f"| {what} | {minimum:.1%} | {best['model']} {best['test_accuracy']:.2%} | "
            f"{best['train_seconds']:,.0f} s | "
            + ("yes" if gap <= 0 else f"no ({gap:.2f} points short)")
            + " |"
        )
    cnn = next(r for r in rows if r["model"] == "cnn")
    lines += [
        "",
        f"The served default (`cnn`, {cnn['params']:,} parameters): {cnn['test_accuracy']:.2%} "
        f"in {cnn['train_seconds']:,.0f} s of training, {_ms(cnn['latency_ms_b1'])} per image "
        f"at batch 1 in ONNX Runtime.",
        "",
        _source(INPUTS["blog_models"][0], cnn["measured_at"], cnn["machine"], "fmnist benchmark"),
    ]
    return lines


def drift() -> list[str]:
    """The drift detector's error rates: false alarms, power, delay."""
    d = _read(INPUTS["blog_drift"][0])
    lines = [
        "| clean windows of | windows | false alarms | rate (95% interval) |",
        "|---:|---:|---:|---|",
    ]
    for c in d["false_alarms"]:
        lo, hi = c["ci95"]
        lines.append(
            f"| {c['window']:,} | {c['windows']:,} | {c['detected']} | {c['rate']:.3f} "
            f"({lo:.3f}-{hi:.3f}) |"
        )
    lines += ["", "| shift (the goals) | detection power |", "|---|---:|"]
    lines += [f"| {k} | {p:.2f} |" for k, p in d["goals"]["power"].items()]
    delays = [x for s in d["streams"] for x in s["delays"]]
    before = sum(s["false_alarms_before_change"] for s in d["streams"])
    checks = sum(s["checks_before_change"] * s["streams"] for s in d["streams"])
    lines += [
        "",
        f"Streams with a change point ({len(d['streams'])} settings, "
        f"{sum(s['streams'] for s in d['streams'])} streams): median detection delay "
        f"{statistics.median(delays):.0f} predictions after the change (at most {max(delays)}); "
        f"{before} false alarms in {checks:,} checks before the change. "
        f"{d['windows_run']:,} windows in all, {d['detect_ms_per_window']:.0f} ms per check; "
        f"alpha {d['settings']['alpha']}, Holm's correction.",
        "",
        f"*`{INPUTS['blog_drift'][0]}`, finished {d['finished_at']} on {_machine(d['machine'])} "
        "by `python benchmarks/drift/run.py`.*",
    ]
    return lines


def ab() -> list[str]:
    """Sequential A/B testing against peeking at a z-test."""
    a = _read(INPUTS["blog_ab"][0])
    lines = [
        "| true difference | false positives: always-valid, a look every batch | z-test, "
        "same looks | z-test, one look at the planned size | power of the always-valid test "
        "by the planned size | of the one-look z-test |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in a["rows"]:
        lines.append(
            f"| {r['effect']:+.2f} | {r['false_positive_rate']:.3f} | "
            f"{r['false_positive_rate_peeking_z_test']:.3f} | "
            f"{r['false_positive_rate_fixed_z_test']:.3f} | {r['power']:.3f} | "
            f"{r['power_fixed_z_test']:.3f} |"
        )
    r0 = a["rows"][0]
    lines += [
        "",
        f"*`{INPUTS['blog_ab'][0]}`, {a['experiments']:,} seeded experiments per row "
        f"(accuracy {r0['base_rate']}, alpha {r0['alpha']}, a look every "
        f"{r0['batch_per_arm']} labelled predictions per arm), {_when(a['measured_at'])}, "
        "by `python benchmarks/bench_ab.py`.*",
    ]
    return lines


def reliability() -> list[str]:
    """Fuzzing and the soak test."""
    fz, s = _read(INPUTS["blog_reliability"][0]), _read(INPUTS["blog_reliability"][1])
    lat, t = s["latency"], s["targets"]
    mem, log, av = s["memory"], s["prediction_log"], s["availability"]
    lines = [
        "| check | result |",
        "|---|---|",
        f"| schema fuzzing (Schemathesis) | {fz['total_cases']:,} cases over "
        f"{len(fz['operations'])} operations: {fz['server_errors']} server errors, "
        f"{fz['schema_violations']} schema violations, {fz['failures']} failures |",
        f"| soak ({s['settings']['duration_s'] / 60:.0f} minutes at "
        f"{s['settings']['target_rps']:.0f} requests/s, a mixed workload) | "
        f"{s['locust']['requests']:,} requests, {s['locust']['failures']} failures, "
        f"availability {av['availability']:.3%} (objective {av['objective']:.1%}) |",
        f"| soak latency, all routes | p50 {_ms(lat['overall']['p50_ms'])}, p95 "
        f"{_ms(lat['overall']['p95_ms'])} (bar {t['p95_ms']:g} ms) |",
        f"| soak latency, explanations | p95 {_ms(lat['explain']['p95_ms'])} (bar "
        f"{t['explain_p95_ms']:g} ms: "
        f"{'met' if s['verdict']['explain_p95_within_bar'] else 'missed'}) |",
        f"| memory after warm-up | {mem['rss_after_warmup_mib']:.0f} MiB to "
        f"{mem['rss_end_mib']:.0f} MiB ({mem['growth']:+.1%}; bar "
        f"{t['max_memory_growth']:.0%}) |",
        f"| prediction log | {log['acknowledged_ids']:,} acknowledged predictions, "
        f"{log['missing']} missing |",
        "",
        _source(
            INPUTS["blog_reliability"][0],
            fz["measured_at"],
            fz["machine"],
            "python benchmarks/bench_fuzz.py",
        ),
        _source(
            INPUTS["blog_reliability"][1],
            s["measured_at"],
            s["machine"],
            "python benchmarks/bench_soak.py",
        ),
    ]
    return lines


def cost() -> list[str]:
    """Cost per prediction, the cheapest option per traffic level, against the KPI."""
    c = _read(INPUTS["blog_cost"][0])
    lines = ["| traffic | cheapest option | USD per million predictions |", "|---:|---|---:|"]
    for level in c["levels"]:
        totals = {
            k: v.get("total_usd_per_prediction") or sum(v["usd_per_prediction"].values())
            for k, v in level["options"].items()
        }
        option = min(totals, key=lambda k: totals[k])
        lines.append(
            f"| {level['rps']:,g} request{'' if level['rps'] == 1 else 's'}/s | {option} | "
            f"{totals[option] * 1e6:.2f} |"
        )
    lines += [
        "",
        f"The KPI: below ${c['kpi_usd_per_prediction'] * 1e6:,.0f} per million. "
        f"*`{INPUTS['blog_cost'][0]}`, computed {_when(c['computed_at'])} by "
        f"`{c.get('command', 'python benchmarks/cost.py')}` from the throughput measured "
        f"{_when(c['throughput']['measured_at'])} and dated list prices.*",
    ]
    return lines


RENDERERS: dict[str, Callable[[], list[str]]] = {
    "blog_onnx": onnx,
    "blog_http": http,
    "blog_models": models,
    "blog_drift": drift,
    "blog_ab": ab,
    "blog_reliability": reliability,
    "blog_cost": cost,
}


def render(name: str) -> str:
    """The block ``name`` with its markers."""
    begin = (
        f"<!-- {name}: begin (generated by benchmarks/blog_figures.py from "
        f"{', '.join(INPUTS[name])}; do not edit) -->"
    )
    return "\n".join([begin, *RENDERERS[name](), f"<!-- {name}: end -->"])
