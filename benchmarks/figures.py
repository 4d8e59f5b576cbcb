"""Every generated section of the docs, re-rendered from the files in the repository.

The figures in the docs are never typed: each benchmark writes a result file (JSON, under
``benchmarks/results/`` or next to the page) and renders it into its page, between two markers
``<!-- NAME: begin ... -->`` and ``<!-- NAME: end -->`` (or as a whole generated page). This
module lists every such section with its generator and its inputs, so that one command
re-renders them all from the committed result files and one check finds the stale ones:

    python benchmarks/figures.py            # rewrite every section whose inputs exist
    python benchmarks/figures.py NAME ...   # only these sections
    python benchmarks/figures.py --check    # exit 1 when a page disagrees with its inputs
    python benchmarks/figures.py --list     # the sections, their pages and inputs

``tests/unit/test_docs_figures.py`` runs the check for every section and fails when a marker
in ``docs/`` or ``README.md`` belongs to no listed section. A new generated section: give the
generator a render function of its result file, then add a :class:`Section` to ``SECTIONS``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOCS = REPO / "docs"
RESULTS = HERE / "results"
README = REPO / "README.md"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # generators import each other by name (bench_http, ...)

MARKER = re.compile(r"<!--\s*([A-Za-z0-9_-]+):\s?(begin|end)\b")


@dataclass(frozen=True)
class Section:
    """One generated section between the markers named ``name`` (``marked``), or a whole
    generated page; ``render`` gives the section with its markers, or the page."""

    name: str
    doc: Path
    inputs: tuple[Path, ...]
    command: str
    render: Callable[[], str]
    marked: bool = True
    checked_by: str | None = None

    def missing_inputs(self) -> list[Path]:
        """The inputs that are not in this checkout."""
        return [path for path in self.inputs if not path.is_file()]

    def current(self) -> str:
        """The committed page."""
        return self.doc.read_text(encoding="utf-8")

    def updated(self, text: str) -> str:
        """``text`` (the page) with this section rendered anew from its inputs."""
        rendered = self.render()
        if not self.marked:
            return rendered
        name = re.escape(self.name)
        begin = re.search(rf"<!--\s*{name}:\s?begin\b", text)
        end = re.compile(rf"<!--\s*{name}:\s?end\s*-->").search(text, begin.end() if begin else 0)
        if begin is None or end is None:
            raise ValueError(f"{rel(self.doc)} lacks the markers of the section {self.name!r}")
        return text[: begin.start()] + rendered + text[end.end() :]


def rel(path: Path) -> str:
    """``path`` relative to the repository (as given when it is elsewhere)."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def load(relpath: str) -> ModuleType:
    """Import a generator by its path under ``benchmarks/`` (they are scripts, not a package)."""
    name = "figures_" + re.sub(r"\W", "_", relpath.removesuffix(".py"))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / relpath)
    if spec is None or spec.loader is None:
        raise ImportError(relpath)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def read_json(path: Path) -> Any:
    """A result file."""
    return json.loads(path.read_text(encoding="utf-8"))


def wrapped(begin: str, end: str, inner: str) -> str:
    """A section whose generator renders the text between its markers only."""
    return f"{begin}\n{inner}\n{end}"


def _marked(
    name: str,
    doc: str,
    result: str,
    script: str,
    body: Callable[[ModuleType, Any], str],
    *,
    module: str | None = None,
    command: str | None = None,
) -> Section:
    """A marked section rendered from one JSON result file by ``body(module, results)``; the
    generator is imported only when the section is rendered."""
    path = REPO / result
    generator = module or script

    def render() -> str:
        return body(load(generator), read_json(path))

    command = command or f"python benchmarks/{script}"
    return Section(name, DOCS / doc, (path,), command, render)


QUICK_START_MARKERS = (
    "<!-- readme_quick_start: begin (generated from README.md by benchmarks/figures.py; "
    "do not edit) -->",
    "<!-- readme_quick_start: end -->",
)
"""The markers of the README's quick start in ``docs/quick-start.md``."""


def _kpis() -> str:
    report = load("kpi_report.py")
    text: str = report.block(report.load_results())
    return text


def _quick_start() -> str:
    """The README's "Quick start" section, its links re-based from the repository root to
    ``docs/`` (``docs/x.md`` -> ``x.md``, anything else -> ``../x``)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Quick start") + 1
    stop = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    body = "\n".join(lines[start:stop]).strip("\n")

    def rebase(match: re.Match[str]) -> str:
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
            return match.group(0)
        target = target[len("docs/") :] if target.startswith("docs/") else f"../{target}"
        return f"]({target})"

    return wrapped(*QUICK_START_MARKERS, re.sub(r"\]\(([^)\s]+)\)", rebase, body))


def _packages() -> str:
    architecture = _load_script("architecture")
    block: str = architecture.mermaid(architecture.package_edges())
    return wrapped(architecture.BEGIN, architecture.END, block)


def _load_script(name: str) -> ModuleType:
    return load(f"../scripts/{name}.py")


def _faithfulness() -> str:
    from fmnist.explain.faithfulness import FaithfulnessReport, report_markdown

    report = FaithfulnessReport.model_validate_json(
        (DOCS / "explain" / "faithfulness.json").read_text(encoding="utf-8")
    )
    images = {  # as fmnist explain evaluate --out docs/explain --images-dir docs/images/explain
        "Deletion and insertion curves": "../images/explain/deletion_insertion.png",
        "Cascading randomisation": "../images/explain/randomisation.png",
        "Example heatmaps": "../images/explain/examples.png",
    }
    text: str = report_markdown(report, images)
    return text


def _leaderboard() -> str:
    from fmnist.pipelines.leaderboard_page import kept_sections, read_rows, render_markdown

    page = DOCS / "benchmarks.md"
    text: str = render_markdown(read_rows(DOCS / "benchmarks.json"), kept_sections(page))
    return text


def _cost_report() -> str:
    from fmnist.costing.render import section

    return section(read_json(RESULTS / "cost.json"))


def _drift() -> str:
    text: str = load("drift/run.py").render(read_json(RESULTS / "drift.json"))
    return text


BLOG_BLOCKS = (
    "blog_onnx",
    "blog_http",
    "blog_models",
    "blog_drift",
    "blog_ab",
    "blog_reliability",
    "blog_cost",
)
"""The generated blocks of ``docs/blog.md`` (``benchmarks/blog_figures.py`` renders them)."""


def _blog(name: str) -> Section:
    """One block of the blog post, rendered from the result files it names."""
    inputs = load("blog_figures.py").INPUTS[name]

    def render() -> str:
        text: str = load("blog_figures.py").render(name)
        return text

    return Section(
        name,
        DOCS / "blog.md",
        tuple(REPO / p for p in inputs),
        f"the benchmarks that write {', '.join(inputs)}",
        render,
    )


def _optional_json(path: Path) -> Any:
    return read_json(path) if path.is_file() else None


def _training_time() -> str:
    report = load("lifecycle_report.py")
    inner: str = report.training(
        _optional_json(DOCS / "benchmarks.json"),
        _optional_json(RESULTS / "train-quick-auto-cl.json"),
    )
    return wrapped(report.TRAINING_BEGIN, report.TRAINING_END, inner)


def _zoo_targets() -> str:
    report = load("zoo_report.py")
    inner: str = report.targets(DOCS / "benchmarks.json")
    return wrapped(report.TARGETS_BEGIN, report.TARGETS_END, inner)


def _readme_measured() -> str:
    table = load("readme_measured.py")
    text: str = table.block(table.load_results())
    return text


def _video_page() -> ModuleType:
    from fmnist.video import page

    return page


SECTIONS: tuple[Section, ...] = (
    _marked(
        "bench_ab",
        "rollout.md",
        "benchmarks/results/ab.json",
        "bench_ab.py",
        lambda m, r: wrapped(m.BEGIN, m.END, m.render(r)),
    ),
    _marked(
        "batch_engines",
        "pipelines.md",
        "benchmarks/results/batch_engines.json",
        "bench_batch_engines.py",
        lambda m, r: m.render(r),
    ),
    _marked(
        "serve_only",
        "serving.md",
        "benchmarks/results/serve_only.json",
        "bench_serve_only.py",
        lambda m, r: m.render(r),
        command="make test-serve-only (benchmarks/bench_serve_only.py)",
    ),
    _marked(
        "bench_http",
        "serving.md",
        "benchmarks/results/http.json",
        "bench_http.py",
        lambda m, r: wrapped(m.BEGIN, m.END, m.render_section(r)),
        module="http_report.py",
    ),
    _marked(
        "cost",
        "gcp.md",
        "benchmarks/results/cost.json",
        "cost.py",
        lambda m, r: m.render(r),
        command="fmnist cost report (or python benchmarks/cost.py)",
    ),
    Section(
        "cost_report",
        DOCS / "cost.md",
        (RESULTS / "cost.json", RESULTS / "variants.json"),
        "fmnist cost report (after python benchmarks/bench_variants.py)",
        _cost_report,
    ),
    _marked(
        "bench_soak",
        "security.md",
        "benchmarks/results/soak.json",
        "bench_soak.py",
        lambda m, r: wrapped(m.BEGIN, m.END, m.render_section(r)),
        module="soak/report.py",
    ),
    _marked(
        "bench_fuzz",
        "security.md",
        "benchmarks/results/fuzz.json",
        "bench_fuzz.py",
        lambda m, r: m.render(r),
    ),
    _marked(
        "real_photos_demo",
        "real-photos.md",
        "benchmarks/results/real_photos_demo.json",
        "bench_real_photos.py",
        lambda m, r: m.render(r),
        command="python benchmarks/bench_real_photos.py (--render re-renders)",
    ),
    _marked(
        "bench_dashboard",
        "dashboard.md",
        "benchmarks/results/dashboard.json",
        "bench_dashboard.py",
        lambda m, r: m.render(r),
    ),
    *(_blog(name) for name in BLOG_BLOCKS),
    Section(
        "drift",
        DOCS / "drift-benchmark.md",
        (RESULTS / "drift.json",),
        "python benchmarks/drift/run.py (--render re-renders)",
        _drift,
        marked=False,
    ),
    Section(
        "faithfulness",
        DOCS / "explain" / "faithfulness.md",
        (DOCS / "explain" / "faithfulness.json",),
        "fmnist explain evaluate --out docs/explain --images-dir docs/images/explain",
        _faithfulness,
        marked=False,
    ),
    Section(
        "leaderboard",
        DOCS / "benchmarks.md",
        (DOCS / "benchmarks.json",),
        "fmnist benchmark",
        _leaderboard,
        marked=False,
        checked_by="tests/unit/pipelines/test_leaderboard_page.py",
    ),
    Section(
        "kpis",
        DOCS / "business.md",
        (),
        "python benchmarks/figures.py kpis (reads the result files that exist)",
        _kpis,
    ),
    _marked(
        "pareto",
        "benchmarks.md",
        "benchmarks/results/pareto.json",
        "bench_pareto.py",
        lambda m, r: wrapped(m.BEGIN, m.END, m.render(r)),
        module="pareto_report.py",
        command="python benchmarks/bench_pareto.py (--render re-renders)",
    ),
    _marked(
        "distillation",
        "model-zoo.md",
        "benchmarks/results/distillation.json",
        "bench_distill.py",
        lambda m, r: m.render(r),
        command="python benchmarks/bench_distill.py (--render re-renders)",
    ),
    Section(
        "served_models",
        DOCS / "serving.md",
        (RESULTS / "http-served-default.json", RESULTS / "http.json"),
        "python benchmarks/bench_http.py --preset default --core-only --output "
        "benchmarks/results/http-served-default.json",
        lambda: load("http_report.py").render_served_section(),
    ),
    Section(
        "slo_alerts",
        DOCS / "slos.md",
        (REPO / "monitoring" / "prometheus" / "rules" / "fmnist-alerts.yml",),
        "python benchmarks/figures.py slo_alerts",
        lambda: load("slo_report.py").render_alerts(),
    ),
    Section(
        "slo_measured",
        DOCS / "slos.md",
        (RESULTS / "soak.json", RESULTS / "http.json"),
        "python benchmarks/figures.py slo_measured (after bench_soak.py or bench_http.py)",
        lambda: load("slo_report.py").render_measured(),
    ),
    _marked(
        "bench_data",
        "data.md",
        "benchmarks/results/data.json",
        "bench_data.py",
        lambda m, r: m.render(r),
    ),
    _marked(
        "default_model",
        "lifecycle.md",
        "benchmarks/results/default_model.json",
        "default_model.py",
        lambda m, r: wrapped(m.MAIN_BEGIN, m.MAIN_END, m.render_main(r)),
        command="fmnist pipeline run, then benchmarks/default_model.py",
    ),
    _marked(
        "default_model_card",
        "lifecycle.md",
        "benchmarks/results/default_model.json",
        "default_model.py",
        lambda m, r: wrapped(m.CARD_BEGIN, m.CARD_END, m.render_card(r)),
        command="fmnist pipeline run, then benchmarks/default_model.py",
    ),
    _marked(
        "bench_onnx",
        "lifecycle.md",
        "benchmarks/results/onnx.json",
        "bench_onnx.py",
        lambda m, r: wrapped(m.ONNX_BEGIN, m.ONNX_END, m.onnx(r)),
        module="lifecycle_report.py",
    ),
    Section(
        "training_time",
        DOCS / "lifecycle.md",
        (),
        "fmnist benchmark --models cnn; python benchmarks/bench_train.py --preset quick",
        _training_time,
    ),
    _marked(
        "bench_explain",
        "explainability.md",
        "benchmarks/results/explain.json",
        "bench_explain.py",
        lambda m, r: wrapped(m.BEGIN, m.END, m.render(r)),
        module="explain_report.py",
    ),
    _marked(
        "real_photos",
        "real-photos.md",
        "benchmarks/results/real_photos.json",
        "real_photos.py",
        lambda m, r: wrapped(m.RESULTS_BEGIN, m.RESULTS_END, m.render(r)),
        command="fmnist experiment real-world (one report per row), then benchmarks/real_photos.py",
    ),
    _marked(
        "bench_segmentation",
        "real-photos.md",
        "benchmarks/results/segmentation.json",
        "bench_segmentation.py",
        lambda m, r: wrapped(m.SEGMENTATION_BEGIN, m.SEGMENTATION_END, m.segmentation(r)),
        module="real_photos.py",
    ),
    Section(
        "zoo_targets",
        DOCS / "model-zoo.md",
        (DOCS / "benchmarks.json",),
        "fmnist benchmark",
        _zoo_targets,
    ),
    _marked(
        "bench_compute",
        "model-zoo.md",
        "benchmarks/results/compute.json",
        "bench_compute.py",
        lambda m, r: wrapped(m.COMPUTE_BEGIN, m.COMPUTE_END, m.compute(r)),
        module="zoo_report.py",
    ),
    Section(
        "readme_measured",
        README,
        (),
        "python benchmarks/figures.py readme_measured (reads the result files that exist)",
        _readme_measured,
    ),
    Section(
        "readme_quick_start",
        DOCS / "quick-start.md",
        (README,),
        "python benchmarks/figures.py readme_quick_start",
        _quick_start,
    ),
    Section(
        "video_scenes",
        DOCS / "video.md",
        (),
        "python benchmarks/figures.py video_scenes (from fmnist.video.scenes)",
        lambda: _video_page().scenes_markdown(),
    ),
    Section(
        "video_run",
        DOCS / "video.md",
        (RESULTS / "video.json",),
        "make video (fmnist video record --result benchmarks/results/video.json)",
        lambda: _video_page().run_markdown(read_json(RESULTS / "video.json")),
    ),
    Section(
        "packages",
        DOCS / "architecture.md",
        (),
        "python scripts/architecture.py",
        _packages,
        checked_by="tests/unit/test_architecture_doc.py",
    ),
)
"""Every generated section of ``docs/`` and ``README.md``."""


READS_EVERY_RESULT = ("kpis", "training_time", "readme_measured")
"""Sections that read whichever result files exist (re-rendered after every benchmark)."""


def by_name(names: Iterable[str] | None = None) -> list[Section]:
    """The sections called ``names`` (all when None)."""
    if names is None:
        return list(SECTIONS)
    known = {s.name: s for s in SECTIONS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown sections {unknown}; known: {sorted(known)}")
    return [known[n] for n in names]


def marker_names(text: str) -> set[str]:
    """The names of the ``<!-- NAME: begin -->`` markers in ``text``."""
    return {m.group(1) for m in MARKER.finditer(text) if m.group(2) == "begin"}


def unregistered_markers() -> dict[str, set[str]]:
    """Marker names in ``docs/**/*.md`` and ``README.md`` that no listed section renders."""
    known: dict[Path, set[str]] = {}
    for s in SECTIONS:
        if s.marked:
            known.setdefault(s.doc.resolve(), set()).add(s.name)
    found: dict[str, set[str]] = {}
    for page in [README, *sorted(DOCS.rglob("*.md"))]:
        extra = marker_names(page.read_text(encoding="utf-8")) - known.get(page.resolve(), set())
        if extra:
            found[rel(page)] = extra
    return found


def check(section: Section) -> str | None:
    """None when the page holds what its inputs render now, else why not."""
    text = section.current()
    try:
        fresh = section.updated(text)
    except ValueError as exc:
        return str(exc)
    if text != fresh:
        return (
            f"{rel(section.doc)}: section {section.name!r} is stale (regenerate: "
            f"python benchmarks/figures.py {section.name}; its inputs come from "
            f"{section.command})"
        )
    return None


def write_sections(names: Iterable[str] | None = None) -> list[Section]:
    """Rewrite the named sections (all) whose inputs exist; the ones written."""
    written = []
    for section in by_name(names):
        if section.missing_inputs():
            print(f"skipped {section.name}: no {', '.join(map(rel, section.missing_inputs()))}")
            continue
        text = section.current()
        fresh = section.updated(text)
        if fresh != text:
            section.doc.write_text(fresh, encoding="utf-8")
            print(f"wrote {section.name} into {rel(section.doc)}")
        written.append(section)
    return written


def refresh_after(result: Path) -> list[Section]:
    """Re-render the sections a benchmark's new ``result`` file feeds: those that list it and
    those that read every result file (the KPI table, the README's headline table), so no page
    is left stale by a run."""
    target = result.resolve()
    names = [
        s.name
        for s in SECTIONS
        if s.name in READS_EVERY_RESULT or any(p.resolve() == target for p in s.inputs)
    ]
    return write_sections(names)


def main(argv: list[str] | None = None) -> int:
    """Rewrite, ``--check`` or ``--list`` the generated sections."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="sections (default: all)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a page is stale")
    parser.add_argument("--list", action="store_true", help="list the sections")
    args = parser.parse_args(argv)
    sections = by_name(args.names or None)
    if args.list:
        for s in sections:
            inputs = ", ".join(rel(p) for p in s.inputs) or "the code and optional files"
            print(f"{s.name:20} {rel(s.doc):28} {inputs}")
        return 0
    if not args.check:
        write_sections(args.names or None)
        return 0
    problems = [
        f"{page}: markers of no listed section: {sorted(names)}"
        for page, names in unregistered_markers().items()
    ]
    for s in sections:
        missing = s.missing_inputs()
        if missing:
            print(f"not checked {s.name}: no {', '.join(map(rel, missing))} (run {s.command})")
            continue
        problem = check(s)
        if problem:
            problems.append(problem)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
