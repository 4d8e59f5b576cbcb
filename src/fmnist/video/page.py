"""The generated parts of ``docs/video.md``: the scene list (from the code) and the measured
run (from the manifest of ``make video``, committed as ``benchmarks/results/video.json``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fmnist.video.scenes import SCENES, SHORT_TARGET_S

SCENES_BEGIN = (
    "<!-- video_scenes: begin (generated from fmnist.video.scenes by benchmarks/figures.py; "
    "do not edit) -->"
)
SCENES_END = "<!-- video_scenes: end -->"
RUN_BEGIN = (
    "<!-- video_run: begin (generated from benchmarks/results/video.json by "
    "benchmarks/figures.py; do not edit) -->"
)
RUN_END = "<!-- video_run: end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def scenes_markdown() -> str:
    """The scenes in order: title, narration, target length, the work done before it."""
    rows = [
        "| # | scene | subtitle (narration) | target, full video | before filming (cut) |",
        "|---|---|---|---|---|",
    ]
    for number, scene in enumerate(SCENES, start=1):
        doc = (scene.prepare.__doc__ or "") if scene.prepare else ""
        before = " ".join(doc.split())
        rows.append(
            f"| {number} | `{scene.name}`: {_cell(scene.title)} | {_cell(scene.subtitle)} | "
            f"{scene.target_s:g} s | {_cell(before) or '-'} |"
        )
    total = sum(scene.target_s for scene in SCENES)
    rows.append("")
    rows.append(
        f"{len(SCENES)} scenes; their targets add up to {total:g} s. A scene lasts longer when "
        "its actions (or its narration) take longer. The short CI variant gives every scene "
        f"{SHORT_TARGET_S:g} s."
    )
    return "\n".join([SCENES_BEGIN, *rows, SCENES_END])


def run_markdown(manifest: Mapping[str, Any]) -> str:
    """The measured run: the file's length, size and format, and each scene's timing."""
    machine = manifest.get("machine", {})
    minutes, seconds = divmod(float(manifest["duration_s"]), 60)
    lines = [
        f"The last `make video` ({manifest['variant']} variant) wrote a video of "
        f"**{int(minutes)} min {seconds:04.1f} s** ({float(manifest['duration_s']):.1f} s), "
        f"**{int(manifest['size_bytes']) / 1e6:.1f} MB**, {manifest['width']}x"
        f"{manifest['height']} at {float(manifest['fps']):g} fps, {manifest['codec']} "
        f"({manifest['pixel_format']}), streams: {', '.join(manifest['streams'])}; voice: "
        f"{manifest['voice_note']}. Recording took {float(manifest['recording_wall_s']):.0f} s "
        f"of wall time (the champion's training included); the champion v"
        f"{manifest['models']['champion']} was replaced by v{manifest['models']['promoted']}. "
        f"Recorded {manifest['recorded_at']} on {machine.get('cpu', 'an unknown CPU')} "
        f"({machine.get('cores_usable', '?')} usable cores, load average "
        f"{', '.join(f'{x:.1f}' for x in machine.get('load_average', []))}).",
        "",
        "| scene | starts at | lasts | backend work before it (cut) |",
        "|---|---|---|---|",
    ]
    for scene in manifest["scenes"]:
        lines.append(
            f"| `{scene['name']}` | {float(scene['start_s']):.1f} s | "
            f"{float(scene['duration_s']):.1f} s | {float(scene['prepare_s']):.1f} s |"
        )
    return "\n".join([RUN_BEGIN, *lines, RUN_END])
