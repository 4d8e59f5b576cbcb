"""``fmnist video``: record the scripted demo video of the real system.

The command imports its modules when it runs, so ``fmnist --help`` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from fmnist.cli_support import AppContext, console

video_app = typer.Typer(help="Record the demo video of the real system.", no_args_is_help=True)

DEFAULT_PHOTOS = Path(os.environ.get("FMNIST_PHOTOS_DIR") or "../shared/data/clothing-photos")


@video_app.command("record")
def record_command(
    ctx: typer.Context,
    short: Annotated[
        bool,
        typer.Option("--short", help="The CI variant: every scene for about a second, 640x360."),
    ] = False,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the MP4, .vtt, poster and video.json.")
    ] = Path("build/video"),
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="The system's work folder (default: a new temporary one; a champion is "
            "trained there when it has none).",
        ),
    ] = None,
    photos: Annotated[
        Path,
        typer.Option("--photos", help="Clothing photos (validation/CLASS/*.jpg) for the photo."),
    ] = DEFAULT_PHOTOS,
    mkdocs_config: Annotated[
        Path, typer.Option("--mkdocs", help="The documentation site's mkdocs.yml.")
    ] = Path("mkdocs.yml"),
    result: Annotated[
        Path | None,
        typer.Option("--result", help="Also copy the manifest here (the docs' result file)."),
    ] = None,
) -> None:
    """Start the system, film every scene in headless Chromium, write
    ``fmnist-demo.mp4``, ``.vtt``, ``-poster.png`` and ``video.json``."""
    from fmnist.atomic import atomic_write_text
    from fmnist.video.record import FULL, SHORT, record_video

    app_ctx: AppContext = ctx.obj
    plan = SHORT if short else FULL
    console.print(f"[bold]demo video[/bold] ({plan.variant}, {plan.width}x{plan.height}) -> {out}")
    manifest = record_video(
        out,
        plan=plan,
        home=home,
        photos=photos,
        mkdocs_config=mkdocs_config,
        build_services=app_ctx.build_services,
        console=console,
    )
    if result is not None:
        atomic_write_text(result, (out / "video.json").read_text(encoding="utf-8"))
    console.print(
        f"wrote {out / manifest['video']}: {manifest['duration_s']:.1f} s, "
        f"{manifest['size_bytes'] / 1e6:.1f} MB, {manifest['width']}x{manifest['height']}, "
        f"{len(manifest['scenes'])} scenes; voice: {manifest['voice_note']}",
        highlight=False,
    )
