"""``fmnist data``: fetch, validate and snapshot the dataset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fmnist import CLASS_NAMES
from fmnist.atomic import atomic_write_text
from fmnist.cli_support import AppContext, console, fail
from fmnist.data.sources import DirectorySource, default_sources, load_raw
from fmnist.data.validation import ValidationReport, validate_splits
from fmnist.errors import ValidationFailedError

data_app = typer.Typer(help="Fetch, validate and snapshot Fashion-MNIST.", no_args_is_help=True)


@data_app.command("sources")
def sources(ctx: typer.Context) -> None:
    """List the data sources in the order they are tried, and which hold the files."""
    app_ctx: AppContext = ctx.obj
    for i, source in enumerate(default_sources(app_ctx.settings, show_progress=False), 1):
        if isinstance(source, DirectorySource):
            from fmnist.data.sources import DATASET_FILES

            found = sum(source.locate(f) is not None for f in DATASET_FILES)
            state = "complete" if found == len(DATASET_FILES) else f"{found}/4 files"
        else:
            state = "used only when no folder above is complete"
        console.print(f"{i}. {source.describe()}  [dim]({state})[/dim]")


@data_app.command("fetch")
def fetch(ctx: typer.Context) -> None:
    """Locate (or download) the four files and verify their checksums."""
    app_ctx: AppContext = ctx.obj
    start = time.perf_counter()
    raw = load_raw(default_sources(app_ctx.settings))
    elapsed = time.perf_counter() - start
    console.print(f"source: {raw.source}")
    for name, digest in raw.checksums.items():
        console.print(f"  [green]ok[/green] {name}  sha256 {digest[:16]}...")
    console.print(
        f"train {raw.train_images.shape[0]:,} + test {raw.test_images.shape[0]:,} images "
        f"loaded and verified in {elapsed:.2f} s; content hash {raw.content_hash[:16]}"
    )


def print_report(report: ValidationReport) -> None:
    """Print a readable summary of a validation report."""
    counts = Table(title="class counts")
    counts.add_column("class")
    for split in report.splits:
        counts.add_column(split, justify="right")
    for cls, name in enumerate(CLASS_NAMES):
        counts.add_row(name, *(f"{s.class_counts[cls]:,}" for s in report.splits.values()))
    if report.splits:
        console.print(counts)
    checks = Table(title="checks")
    for column in ("check", "value", "threshold", "result", "detail"):
        checks.add_column(column)
    for check in report.checks:
        verdict = "[green]pass[/green]" if check.passed else "[bold red]FAIL[/bold red]"
        checks.add_row(
            check.name, f"{check.value:.4g}", f"{check.threshold:.4g}", verdict, check.detail
        )
    console.print(checks)
    for split, st in report.splits.items():
        console.print(
            f"{split}: {st.count:,} images, pixel mean {st.pixel_mean:.2f} std {st.pixel_std:.2f}, "
            f"{st.duplicate_extra_copies} exact duplicates, {st.blank_images} blank"
        )
    for leak in report.leakage:
        console.print(
            f"leakage: {leak.leaked_images} {leak.split} images also in train "
            f"({leak.leaked_with_other_label} with another label)"
        )
    verdict = "[green]PASSED[/green]" if report.passed else "[bold red]FAILED[/bold red]"
    console.print(f"validation {verdict}: {len(report.failures)} of {len(report.checks)} failed")


@data_app.command("validate")
def validate(
    ctx: typer.Context,
    snapshot: Annotated[
        str | None,
        typer.Option("--snapshot", "-s", help="Validate a snapshot (id or prefix) instead."),
    ] = None,
    report_path: Annotated[
        Path | None, typer.Option("--report", help="Where to write the JSON report.")
    ] = None,
) -> None:
    """Validate the raw dataset (or a snapshot); exit code 1 when a threshold is violated."""
    from fmnist.data.snapshot import load_snapshot

    app_ctx: AppContext = ctx.obj
    settings = app_ctx.settings
    if snapshot is not None:
        snap = load_snapshot(app_ctx.services.storage, snapshot)
        splits = {name: snap.split(name) for name in snap.images}
        dataset = snap.snapshot_id
    else:
        raw = load_raw(default_sources(settings))
        splits = {
            "train": (raw.train_images, raw.train_labels),
            "test": (raw.test_images, raw.test_labels),
        }
        dataset = raw.content_hash
    report = validate_splits(splits, settings.validation, dataset)
    path = report_path or settings.home / "reports" / f"validation-{dataset[:16]}.json"
    atomic_write_text(path, report.model_dump_json(indent=2))
    print_report(report)
    console.print(f"report: {path}")
    if not report.passed:
        names = ", ".join(c.name for c in report.failures)
        raise ValidationFailedError(f"data validation failed: {names} (report: {path})")


@data_app.command("snapshot")
def snapshot(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the manifest as JSON (for pipelines).")
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="default, or beam: an Apache Beam ETL that first removes duplicate, "
            "conflicting and test-leaking training images.",
        ),
    ] = "default",
) -> None:
    """Validate the dataset and write it to the data lake as a snapshot (idempotent)."""
    from fmnist.data.snapshot import write_snapshot

    app_ctx: AppContext = ctx.obj
    settings = app_ctx.settings
    storage = app_ctx.services.storage
    if engine not in ("default", "beam"):
        fail(f"--engine must be default or beam, got {engine!r}", 2)
    raw = load_raw(default_sources(settings, show_progress=not as_json))
    if engine == "beam":
        from fmnist.data.beam_etl import beam_snapshot

        etl = beam_snapshot(storage, raw, settings.data, settings.validation)
        manifest, report = etl.manifest, etl.report
        if not as_json:
            console.print(f"Beam ETL removed: {etl.removed or 'nothing'}")
    else:
        manifest, report = write_snapshot(storage, raw, settings.data, settings.validation)
    if as_json:
        typer.echo(manifest.model_dump_json())
        return
    if report is not None:
        print_report(report)
        console.print(f"[green]wrote[/green] snapshot {manifest.snapshot_id}")
    else:
        console.print(f"snapshot {manifest.snapshot_id} already exists; nothing written")
    console.print(
        f"location: {storage.url}/snapshots/{manifest.snapshot_id}  "
        f"(train {manifest.counts['train']:,}, val {manifest.counts['val']:,}, "
        f"test {manifest.counts['test']:,}; {manifest.format})"
    )


@data_app.command("list")
def list_(ctx: typer.Context) -> None:
    """List the snapshots in the data lake, oldest first."""
    from fmnist.data.snapshot import list_snapshots

    app_ctx: AppContext = ctx.obj
    storage = app_ctx.services.storage
    table = Table(title=f"snapshots in {storage.url}")
    for column in ("id", "created_at", "format", "train", "val", "test", "validation"):
        table.add_column(column)
    for m in list_snapshots(storage):
        table.add_row(
            m.snapshot_id,
            m.created_at,
            m.format,
            f"{m.counts['train']:,}",
            f"{m.counts['val']:,}",
            f"{m.counts['test']:,}",
            "passed" if m.validation.get("passed") else "failed",
        )
    console.print(table)


@data_app.command("show")
def show(
    ctx: typer.Context,
    snapshot_id: Annotated[str, typer.Argument(help="Snapshot id or unique prefix.")],
) -> None:
    """Print a snapshot's manifest as JSON."""
    from fmnist.data.snapshot import read_manifest

    app_ctx: AppContext = ctx.obj
    storage = app_ctx.services.storage
    from fmnist.data.snapshot import resolve_snapshot_id

    typer.echo(
        read_manifest(storage, resolve_snapshot_id(storage, snapshot_id)).model_dump_json(indent=2)
    )
