"""``fmnist experiment``: real-photo experiments (harness, domain adaptation, comparison)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fmnist.cli_support import AppContext, console
from fmnist.training.config import PRESETS, make_config

experiment_app = typer.Typer(
    help="Real-photo experiments: measure, adapt, compare.", no_args_is_help=True
)

MappingOption = Annotated[
    Path,
    typer.Option(
        "--mapping", help="Versioned YAML mapping of photo classes to Fashion-MNIST classes."
    ),
]
DEFAULT_MAPPING = Path("config/real-world/clothing-small.yaml")
OutputOption = Annotated[Path, typer.Option("--output", "-o", help="Folder of report folders.")]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def default_also_mappings(mapping: Path) -> list[Path]:
    """``<mapping>-strict.yaml`` beside ``mapping`` when it exists (else nothing)."""
    strict = mapping.with_name(f"{mapping.stem}-strict{mapping.suffix}")
    return [strict] if strict.is_file() and strict != mapping else []


def _verdict(goal: dict[str, object]) -> str:
    if goal["met"] is None:
        return ""
    mark = "[green]met[/green]" if goal["met"] else "[red]not met[/red]"
    return f" ({goal['target']}, {mark})"


def mapping_lines(report: dict[str, Any]) -> list[str]:
    """One console line per mapping of the report's ``mappings`` block, against its goals."""
    lines = []
    for name, block in report.get("mappings", {}).items():
        s, goals = block["summary"], block["goals"]
        lines.append(
            f"  mapping {name} v{block['version']}: accuracy {_pct(s['accuracy'])}"
            f"{_verdict(goals['accuracy'])}, answered {_pct(s['answered_accuracy'])}, top-1 "
            f"{_pct(s['top1_accuracy'])}; abstention unmappable "
            f"{_pct(s['unmappable_abstention'])}{_verdict(goals['unmappable_abstention'])}, "
            f"mappable {_pct(s['mappable_abstention'])}{_verdict(goals['mappable_abstention'])}"
        )
    return lines


@experiment_app.command("real-world")
def real_world(
    ctx: typer.Context,
    photos: Annotated[Path, typer.Argument(help="Folder of labelled photos: PHOTOS/CLASS/*.jpg.")],
    mapping: MappingOption = DEFAULT_MAPPING,
    also_mapping: Annotated[
        list[Path] | None,
        typer.Option(
            "--also-mapping",
            help="Also score every prediction under this mapping (repeatable). Default: "
            "MAPPING-strict.yaml next to --mapping when it exists.",
        ),
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Registry reference (champion, 3, fmnist-photos@champion) or .onnx.",
        ),
    ] = "champion",
    preprocessing: Annotated[
        str, typer.Option("--preprocessing", "-p", help="grabcut | colour | naive.")
    ] = "grabcut",
    min_confidence: Annotated[
        float | None, typer.Option("--min-confidence", min=0.0, max=1.0, help="Override.")
    ] = None,
    energy_threshold: Annotated[
        float | None, typer.Option("--energy-threshold", help="Override.")
    ] = None,
    no_energy_rule: Annotated[
        bool, typer.Option("--no-energy-rule", help="Turn the energy rule off.")
    ] = False,
    fmnist_thresholds: Annotated[
        bool,
        typer.Option(
            "--fmnist-thresholds",
            help="Use the thresholds from Fashion-MNIST, not the model's photo-calibrated ones.",
        ),
    ] = False,
    calibrate_on: Annotated[
        Path | None,
        typer.Option(
            "--calibrate-on",
            help="Calibrate the thresholds on this labelled folder's calibration fold first.",
        ),
    ] = None,
    max_mappable_abstention: Annotated[
        float, typer.Option("--max-mappable-abstention", min=0.0, max=0.99)
    ] = 0.10,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Photos per class.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Report name.")] = None,
    output: OutputOption = Path("experiments"),
    sheet_per_class: Annotated[int, typer.Option("--sheet-per-class", min=1, max=20)] = 4,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log to MLflow.")] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Measure a model and a preprocessing on labelled real photos; write a dated report."""
    from fmnist.realworld.experiment import HarnessConfig, run_harness, slug
    from fmnist.realworld.mapping import load_mapping
    from fmnist.realworld.report import track as track_run
    from fmnist.realworld.report import write_report

    app_ctx: AppContext = ctx.obj
    if preprocessing not in ("grabcut", "colour", "naive"):
        raise typer.BadParameter("choose grabcut, colour or naive", param_hint="--preprocessing")
    loaded = load_mapping(mapping)
    also = [load_mapping(path) for path in (also_mapping or default_also_mappings(mapping))]
    config = HarnessConfig(
        model=model,
        preprocessing=preprocessing,
        min_confidence=min_confidence,
        energy_threshold=energy_threshold,
        no_energy_rule=no_energy_rule,
        fmnist_thresholds=fmnist_thresholds,
        calibrate_on=calibrate_on,
        max_mappable_abstention=max_mappable_abstention,
        limit=limit,
    )
    result = run_harness(
        app_ctx.services,
        photos,
        loaded,
        config,
        name=slug(name) if name else None,
        show_progress=progress,
        also=also,
    )
    folder = write_report(result, loaded, output, per_class=sheet_per_class)
    report = result.report
    s, abst = report["summary"], report["abstention"]
    energy = abst["energy_threshold"]
    console.print(
        f"{s['photos']} photos; model {report['model']['name']}"
        + (f" v{report['model']['version']}" if report["model"]["version"] is not None else "")
        + f"; {report['preprocessing']}; unknown if confidence < {abst['min_confidence']:.2f}"
        + ("" if energy is None else f" or energy > {energy:.3f}")
        + f" ({abst['source']})"
    )
    for key, goal in report["targets"].items():
        mark = "[green]met[/green]" if goal["met"] else "[red]not met[/red]"
        console.print(
            f"  {key.replace('_', ' ')}: {_pct(goal['value'])} ({goal['target']}, {mark})"
        )
    console.print(
        f"  answered accuracy {_pct(s['mappable_answered_accuracy'])}, wrong answers "
        f"{_pct(s['mappable_wrong_answers'])}; preprocessing {report['timing']['median_ms']:.1f} "
        f"ms/photo (median wall)"
    )
    fm = report.get("fashion_mnist_test_accuracy")
    if fm is not None:
        console.print(f"  Fashion-MNIST test accuracy {fm:.2%}")
    for line in mapping_lines(report):
        console.print(line)
    console.print(f"report: {folder}")
    if track:
        run_id = track_run(app_ctx.services, result, folder)
        console.print(f"MLflow run {run_id} (experiment fmnist-real-world)")


@experiment_app.command("adapt")
def adapt(
    ctx: typer.Context,
    photos: Annotated[
        Path, typer.Argument(help="Training photos PHOTOS/CLASS/*.jpg (never validation/).")
    ],
    mapping: MappingOption = DEFAULT_MAPPING,
    preset: Annotated[
        str, typer.Option("--preset", help=f"Training recipe: {', '.join(PRESETS)}.")
    ] = "quick",
    epochs: Annotated[int | None, typer.Option("--epochs", min=1)] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1)] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0)] = None,
    max_minutes: Annotated[float | None, typer.Option("--max-minutes")] = None,
    photo_batch: Annotated[int, typer.Option("--photo-batch", min=0)] = 64,
    outlier_batch: Annotated[int, typer.Option("--outlier-batch", min=0)] = 16,
    outlier_weight: Annotated[float, typer.Option("--outlier-weight", min=0.0)] = 0.25,
    variants: Annotated[int, typer.Option("--variants", min=1, max=16)] = 3,
    finetune_epochs: Annotated[
        int,
        typer.Option(
            "--finetune-epochs",
            min=0,
            help="N: fine-tune the Fashion-MNIST-only model (trained first, or --init-weights) "
            "for N epochs with photos mixed in; 0: train from scratch with photos.",
        ),
    ] = 3,
    finetune_lr: Annotated[float, typer.Option("--finetune-lr", min=0.0)] = 1e-3,
    distill_weight: Annotated[
        float,
        typer.Option(
            "--distill-weight", min=0.0, help="Fine-tuning: keep Fashion-MNIST answers close."
        ),
    ] = 1.0,
    photo_weight: Annotated[float, typer.Option("--photo-weight", min=0.0)] = 0.5,
    init_weights: Annotated[
        Path | None,
        typer.Option("--init-weights", help="weights.pt of a Fashion-MNIST-only run to fine-tune."),
    ] = None,
    segmentation: Annotated[str, typer.Option("--segmentation", help="grabcut | colour.")] = (
        "grabcut"
    ),
    with_baseline: Annotated[
        bool,
        typer.Option(
            "--with-baseline",
            help="Also train the Fashion-MNIST-only model of the same recipe (implied when "
            "fine-tuning without --init-weights).",
        ),
    ] = False,
    reference_accuracy: Annotated[
        float | None, typer.Option("--reference-accuracy", min=0.0, max=1.0)
    ] = None,
    max_drop_points: Annotated[float, typer.Option("--max-drop-points", min=0.0)] = 0.5,
    max_mappable_abstention: Annotated[
        float, typer.Option("--max-mappable-abstention", min=0.0, max=0.99)
    ] = 0.10,
    register: Annotated[bool, typer.Option("--register/--no-register")] = True,
    promote: Annotated[bool, typer.Option("--promote/--no-promote")] = True,
    registered_model: Annotated[str, typer.Option("--registered-model")] = "fmnist-photos",
    snapshot: Annotated[str | None, typer.Option("--snapshot", "-s")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Train with photos mixed in, calibrate "unknown", register under its own name."""
    from fmnist.realworld.adaptation import AdaptOptions
    from fmnist.realworld.mapping import load_mapping
    from fmnist.realworld.train_photos import adapt_and_register

    app_ctx: AppContext = ctx.obj
    if segmentation not in ("grabcut", "colour"):
        raise typer.BadParameter("choose grabcut or colour", param_hint="--segmentation")
    config = make_config(preset, epochs=epochs, threads=threads, seed=seed, max_minutes=max_minutes)
    options = AdaptOptions(
        photo_batch=photo_batch,
        outlier_batch=outlier_batch,
        outlier_weight=outlier_weight,
        variants=variants,
        segmentation=segmentation,
        finetune_epochs=finetune_epochs,
        finetune_lr=finetune_lr,
        distill_weight=distill_weight,
        photo_weight=photo_weight,
    )
    outcome = adapt_and_register(
        app_ctx.services,
        photos,
        load_mapping(mapping),
        config,
        options,
        snapshot_id=snapshot,
        with_baseline=with_baseline,
        init_weights=init_weights,
        reference_accuracy=reference_accuracy,
        max_drop_points=max_drop_points,
        max_mappable_abstention=max_mappable_abstention,
        register=register,
        promote=promote,
        registered_model=registered_model,
        show_progress=progress,
    )
    for label, trained in (("baseline", outcome.baseline), ("adapted", outcome.adapted)):
        if trained is None:
            continue
        last = trained.result.history[-1]
        console.print(
            f"{label}: run {trained.run_id}, Fashion-MNIST test accuracy "
            f"[bold]{trained.fmnist_test_accuracy:.4f}[/bold], validation {last.val_accuracy:.4f}, "
            f"calibration-fold set accuracy {_pct(last.photo_accuracy)}, "
            f"{trained.result.train_seconds:.0f} s; model {trained.onnx_path}"
        )
        cal = trained.calibration
        if cal is not None:
            energy = "off" if cal.energy_threshold is None else f"{cal.energy_threshold:.3f}"
            console.print(
                f"  unknown rule calibrated on the calibration fold: min_confidence "
                f"{cal.min_confidence:.2f}, energy threshold {energy}; abstains on "
                f"{cal.unmappable_abstention:.1%} of unmappable, {cal.mappable_abstention:.1%} "
                "of mappable photos"
            )
    console.print(outcome.reason)
    if outcome.version is not None:
        state = "promoted to champion" if outcome.promoted else "not promoted"
        console.print(
            f"registered {outcome.version.name} version {outcome.version.version}: {state}"
        )


@experiment_app.command("list")
def list_command(output: OutputOption = Path("experiments")) -> None:
    """Compare the reports under the output folder, oldest first."""
    from fmnist.realworld.report import comparison_rows, list_reports

    rows = comparison_rows(list_reports(output))
    if not rows:
        console.print(f"no reports under {output}")
        return
    table = Table(title=f"real-photo experiments in {output}")
    for column in rows[0]:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    console.print(table)
