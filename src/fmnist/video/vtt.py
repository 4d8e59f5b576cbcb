"""WebVTT subtitles: one cue per scene, timed from the scene's measured start and end."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fmnist.atomic import atomic_write_text

_TIMESTAMP = re.compile(r"^(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})$")


@dataclass(frozen=True)
class Cue:
    """One subtitle: shown from ``start`` to ``end`` seconds of the video."""

    start: float
    end: float
    text: str
    identifier: str = ""


def timestamp(seconds: float) -> str:
    """``seconds`` as a WebVTT timestamp, ``HH:MM:SS.mmm`` (rounded to the millisecond)."""
    if seconds < 0:
        raise ValueError(f"a timestamp cannot be negative: {seconds}")
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def parse_timestamp(text: str) -> float:
    """A WebVTT timestamp (``MM:SS.mmm`` or ``HH:MM:SS.mmm``) in seconds."""
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError(f"not a WebVTT timestamp: {text!r}")
    hours, minutes, secs, millis = (int(g or 0) for g in match.groups())
    if minutes > 59 or secs > 59:
        raise ValueError(f"not a WebVTT timestamp: {text!r}")
    return hours * 3600 + minutes * 60 + secs + millis / 1000


def render_vtt(cues: Sequence[Cue]) -> str:
    """The WebVTT file of ``cues``; they must be in order, each ending after it starts and
    not before the previous one ends."""
    blocks = ["WEBVTT"]
    previous_end = 0.0
    for cue in cues:
        if cue.end <= cue.start:
            raise ValueError(f"cue {cue.identifier or cue.text!r} ends before it starts")
        if cue.start < previous_end - 1e-9:
            raise ValueError(f"cue {cue.identifier or cue.text!r} overlaps the one before")
        text = "\n".join(line for line in cue.text.replace("-->", "->").splitlines() if line)
        if not text.strip():
            raise ValueError("a cue needs text")
        head = f"{cue.identifier}\n" if cue.identifier else ""
        blocks.append(f"{head}{timestamp(cue.start)} --> {timestamp(cue.end)}\n{text}")
        previous_end = cue.end
    return "\n\n".join(blocks) + "\n"


def write_vtt(path: Path, cues: Sequence[Cue]) -> None:
    """Write ``cues`` to ``path`` as WebVTT (atomically)."""
    atomic_write_text(path, render_vtt(cues))


def parse_vtt(text: str) -> list[Cue]:
    """The cues of a WebVTT file (identifiers kept; settings after the end time ignored)."""
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or not lines[0].startswith("WEBVTT"):
        raise ValueError("not a WebVTT file: it must start with WEBVTT")
    cues: list[Cue] = []
    for block in "\n".join(lines[1:]).split("\n\n"):
        rows = [row for row in block.split("\n") if row.strip()]
        if not rows or rows[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        identifier = ""
        if "-->" not in rows[0]:
            identifier, rows = rows[0], rows[1:]
        if not rows or "-->" not in rows[0]:
            raise ValueError(f"a cue without timings: {block!r}")
        start, _, rest = rows[0].partition("-->")
        end = rest.split()[0] if rest.split() else ""
        cues.append(
            Cue(parse_timestamp(start), parse_timestamp(end), "\n".join(rows[1:]), identifier)
        )
    return cues
