"""An optional narration voice: ``espeak-ng`` (a Debian package) when it is on ``PATH``.

Without it the video has subtitles only, and the manifest says so; its absence never fails a
recording. Each scene's text is spoken to a WAV file before filming (so a scene lasts at least
as long as its narration); after filming, :func:`mix_track` lays each one at its scene's start.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ESPEAK = "espeak-ng"


def espeak() -> str | None:
    """The path of ``espeak-ng``, or ``None`` when it is not installed."""
    return shutil.which(ESPEAK)


def speak(text: str, out: Path, *, binary: str, words_per_minute: int = 165) -> float:
    """Speak ``text`` into the WAV file ``out``; its length in seconds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [binary, "-v", "en-us", "-s", str(words_per_minute), "-w", str(out), text],
        check=True,
        capture_output=True,
    )
    return wav_seconds(out)


def wav_seconds(path: Path) -> float:
    """The length of a WAV file in seconds."""
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def mix_track(clips: Sequence[tuple[float, Path]], total_s: float, out: Path) -> None:
    """One mono 16-bit WAV of ``total_s`` seconds with each clip starting at its time.

    The clips must share one sample rate and be mono 16-bit (as ``espeak-ng`` writes them); a
    clip running past the next one's start is cut there, and past the end of the track too.
    """
    if not clips:
        raise ValueError("no clips to mix")
    rate = 0
    pieces: list[tuple[int, np.ndarray]] = []
    for start, path in clips:
        with wave.open(str(path), "rb") as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise ValueError(f"{path}: expected mono 16-bit audio")
            if rate and wav.getframerate() != rate:
                raise ValueError(f"{path}: sample rate {wav.getframerate()} != {rate}")
            rate = wav.getframerate()
            pieces.append(
                (round(start * rate), np.frombuffer(wav.readframes(wav.getnframes()), "<i2"))
            )
    track = np.zeros(round(total_s * rate), dtype="<i2")
    starts = [s for s, _ in pieces] + [len(track)]
    for (start, samples), stop in zip(pieces, starts[1:], strict=True):
        part = samples[: max(0, min(stop, len(track)) - start)]
        track[start : start + len(part)] = part
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(track.tobytes())
