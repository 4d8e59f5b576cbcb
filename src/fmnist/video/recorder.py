"""Filming a Playwright page: screenshots on a timeline, assembled into an H.264 MP4.

Within a scene the timeline follows the wall clock, so what the browser does (a click, an
answer arriving, a chart drawn) lasts in the video what it lasted on the page; work between
scenes (traffic, a retrain) is cut, and :meth:`Recorder.hold` shows a rendered page for a
while without waiting for it. Frames are JPEG screenshots; ffmpeg (the binary of the
``imageio-ffmpeg`` package) turns them into a constant-frame-rate H.264 MP4 (yuv420p,
``+faststart``), with the subtitles as a ``mov_text`` track and, when there is one, the
narration as AAC audio.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page


@dataclass(frozen=True)
class Frame:
    """One screenshot and the video time (seconds) it is shown from."""

    path: Path
    t: float


@dataclass
class Recorder:
    """Screenshots of ``page`` into ``folder``, each placed on the video's timeline."""

    page: Page
    folder: Path
    frames: list[Frame] = field(default_factory=list)
    video_t: float = 0.0
    """The end of the timeline so far (seconds)."""
    _anchor_wall: float = 0.0
    _anchor_video: float = 0.0

    def __post_init__(self) -> None:
        """Create the frame folder."""
        self.folder.mkdir(parents=True, exist_ok=True)

    def resume(self) -> float:
        """Start a real-time segment at the end of the timeline (what happened since the last
        frame is cut); the video time it starts at."""
        self._anchor_wall = time.monotonic()
        self._anchor_video = self.video_t
        return self.video_t

    def capture(self) -> Frame:
        """A screenshot now, shown from the current video time."""
        path = self.folder / f"{len(self.frames):05d}.jpg"
        self.page.screenshot(path=str(path), type="jpeg", quality=90)
        t = max(self.video_t, self._anchor_video + time.monotonic() - self._anchor_wall)
        frame = Frame(path, t)
        self.frames.append(frame)
        self.video_t = t
        return frame

    def hold(self, seconds: float) -> None:
        """Show the page as it is now for ``seconds`` of video (without waiting for them)."""
        self.capture()
        self.video_t += max(0.0, seconds)
        self.resume()

    def poster(self, path: Path) -> None:
        """A PNG screenshot of the page as it is now."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), type="png")


def concat_script(frames: list[Frame], end: float) -> str:
    """The ffmpeg concat-demuxer script that shows each frame until the next (the last until
    ``end``); frames shown for no time are left out."""
    if not frames:
        raise ValueError("no frames were captured")
    lines = ["ffconcat version 1.0"]
    kept: list[tuple[Path, float]] = []
    for frame, following in zip(frames, [*(f.t for f in frames[1:]), end], strict=True):
        duration = following - frame.t
        if duration > 1e-4:
            kept.append((frame.path, duration))
    if not kept:
        kept.append((frames[-1].path, max(end - frames[-1].t, 0.04)))
    for path, duration in kept:
        lines += [f"file '{path.name}'", f"duration {duration:.6f}"]
    lines.append(f"file '{kept[-1][0].name}'")  # the concat demuxer's last duration needs it
    return "\n".join(lines) + "\n"


def ffmpeg_exe() -> str:
    """The ffmpeg binary that ``imageio-ffmpeg`` ships (or ``$IMAGEIO_FFMPEG_EXE``)."""
    import imageio_ffmpeg  # type: ignore[import-untyped]

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def encode(
    frames: list[Frame],
    end: float,
    out: Path,
    *,
    fps: int,
    subtitles: Path | None = None,
    audio: Path | None = None,
) -> None:
    """Write the frames (until ``end`` seconds) to ``out`` as H.264 MP4, atomically."""
    folder = frames[0].path.parent
    script = folder / "frames.ffconcat"
    script.write_text(concat_script(frames, end), encoding="utf-8")
    partial = out.with_name(f".{out.name}.partial.mp4")
    command = [ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error"]
    command += ["-f", "concat", "-safe", "0", "-i", str(script)]
    inputs = 1
    maps = ["-map", "0:v"]
    codecs: list[str] = []
    if audio is not None:
        command += ["-i", str(audio)]
        maps += ["-map", f"{inputs}:a"]
        codecs += ["-c:a", "aac", "-b:a", "96k"]
        inputs += 1
    if subtitles is not None:
        command += ["-i", str(subtitles)]
        maps += ["-map", f"{inputs}:s"]
        codecs += ["-c:s", "mov_text", "-metadata:s:s:0", "language=eng"]
    command += maps
    command += [
        "-vf",
        "scale=trunc(iw/2)*2:trunc(ih/2)*2:out_range=tv,format=yuv420p",
        "-fps_mode",
        "cfr",
        "-r",
        str(fps),
    ]
    command += ["-c:v", "libx264", "-preset", "medium", "-crf", "23", "-pix_fmt", "yuv420p"]
    command += [*codecs, "-movflags", "+faststart", "-t", f"{end:.3f}", str(partial)]
    out.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    partial.replace(out)


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg reads from an MP4: its video codec, frame size, rate and duration."""

    codec: str
    width: int
    height: int
    fps: float
    duration_s: float
    pixel_format: str
    streams: list[str]


def probe(path: Path) -> VideoInfo:
    """Read ``path``'s streams with ``ffmpeg -i`` (no ffprobe needed)."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, check=False
    )
    text = result.stderr
    duration = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", text)
    video = re.search(
        r"Stream #\S+.*?: Video: (\w+)[^,]*, (\w+)[^,]*(?:\([^)]*\))?, (\d+)x(\d+).*?, "
        r"(\d+(?:\.\d+)?) fps",
        text,
    )
    if duration is None or video is None:
        raise ValueError(f"ffmpeg could not read {path}: {text.strip()[-500:]}")
    hours, minutes, seconds = duration.groups()
    return VideoInfo(
        codec=video.group(1),
        pixel_format=video.group(2),
        width=int(video.group(3)),
        height=int(video.group(4)),
        fps=float(video.group(5)),
        duration_s=int(hours) * 3600 + int(minutes) * 60 + float(seconds),
        streams=re.findall(r"Stream #\S+.*?: (Video|Audio|Subtitle)", text),
    )
