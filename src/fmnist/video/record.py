"""``fmnist video record``: start the system, film the scenes, write the MP4 and its files.

Writes into ``out``: ``fmnist-demo.mp4`` (H.264, yuv420p, +faststart, the subtitles as a
``mov_text`` track, the narration as AAC when ``espeak-ng`` is installed),
``fmnist-demo.vtt`` (one cue per scene, timed from the scene's measured start and end),
``fmnist-demo-poster.png`` and ``video.json`` (the manifest). Every file is written atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fmnist import __version__
from fmnist.atomic import atomic_write_bytes, atomic_write_text
from fmnist.runtime_info import benchmark_machine, git_commit
from fmnist.video import voice
from fmnist.video.recorder import Recorder, encode, probe
from fmnist.video.scenes import POSTER_SCENE, SCENES, Scene
from fmnist.video.stage import CURSOR_SCRIPT, Stage
from fmnist.video.system import System, VideoError, garment_png, running_system
from fmnist.video.vtt import Cue, write_vtt

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

    from fmnist.config import Settings
    from fmnist.platform.services import Services

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (``apt-get install chromium``); Playwright's own download is not used."""
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--hide-scrollbars",
]
NAME = "fmnist-demo"
GARMENT_CLASS = 9
"""The class of the uploaded garment (Ankle boot)."""


@dataclass(frozen=True)
class Plan:
    """A variant of the video: frame size and rate, and whether scenes are short."""

    short: bool
    width: int
    height: int
    fps: int

    @property
    def variant(self) -> str:
        """``short`` or ``full``."""
        return "short" if self.short else "full"


FULL = Plan(short=False, width=1280, height=720, fps=25)
SHORT = Plan(short=True, width=640, height=360, fps=10)


def pick_photo(photos: Path) -> Path:
    """A real photo to upload: the first validation photo of trousers, else any JPEG."""
    for pattern in ("validation/pants/*.jpg", "validation/*/*.jpg", "**/*.jpg"):
        found = sorted(photos.glob(pattern))
        if found:
            return found[0]
    raise VideoError(f"no clothing photo (*.jpg) under {photos} (set --photos)")


@dataclass(frozen=True)
class SceneTiming:
    """When a scene starts and ends in the video (seconds)."""

    scene: Scene
    start_s: float
    end_s: float
    narration_s: float | None
    prepare_s: float
    """Wall time of the backend work before the scene (cut from the video)."""

    def to_dict(self, short: bool) -> dict[str, Any]:
        """The manifest's row."""
        return {
            "name": self.scene.name,
            "title": self.scene.title,
            "subtitle": self.scene.subtitle,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "duration_s": round(self.end_s - self.start_s, 3),
            "target_s": self.scene.target(short),
            "narration_s": None if self.narration_s is None else round(self.narration_s, 3),
            "prepare_s": round(self.prepare_s, 1),
        }


@contextlib.contextmanager
def _browser(plan: Plan) -> Iterator[BrowserContext]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        raise VideoError(f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            viewport={"width": plan.width, "height": plan.height},
            device_scale_factor=1,
            color_scheme="light",
            reduced_motion="reduce",
            bypass_csp=True,  # the drawn pointer and banner on the model card's strict page
        )
        context.set_default_timeout(30_000)
        context.add_init_script(CURSOR_SCRIPT)
        try:
            yield context
        finally:
            context.close()
            browser.close()


def _narrate(work: Path, plan: Plan, say: Callable[[str], None]) -> tuple[dict[str, Path], str]:
    """Each scene's narration as WAV (full variant with espeak-ng), and a note for the
    manifest."""
    binary = voice.espeak()
    if plan.short:
        return {}, "short variant: subtitles only"
    if binary is None:
        say("espeak-ng is not installed: subtitles only, no voice track")
        return {}, "espeak-ng not on PATH: subtitles only"
    clips = {}
    for scene in SCENES:
        clips[scene.name] = work / "voice" / f"{scene.name}.wav"
        voice.speak(scene.subtitle, clips[scene.name], binary=binary)
    return clips, f"espeak-ng ({binary})"


def _film(
    stage: Stage,
    system: System,
    clips: dict[str, Path],
    poster: Path,
    progress: Progress,
) -> list[SceneTiming]:
    """Play every scene, in order; the timings on the video's timeline."""
    timings = []
    task = progress.add_task("scenes", total=len(SCENES))
    for number, scene in enumerate(SCENES, start=1):
        prepared = time.monotonic()
        if scene.prepare is not None:
            progress.update(task, description=f"{scene.name}: preparing (not filmed)")
            scene.prepare(system)
        prepare_s = time.monotonic() - prepared
        progress.update(task, description=f"{scene.name}: filming")
        narration = voice.wav_seconds(clips[scene.name]) if scene.name in clips else None
        target = max(scene.target(stage.short), (narration or 0) + 0.8)
        stage.banner = f"{number}/{len(SCENES)}  {scene.title}"
        start = stage.recorder.resume()
        try:
            stage.decorate()
            scene.play(stage)
        except VideoError:
            raise
        except Exception as exc:  # a Playwright timeout or assertion: name the scene
            raise VideoError(f"scene {scene.name!r} failed: {exc}") from exc
        stage.hold(max(0.0, start + target - stage.recorder.video_t))
        stage.recorder.capture()
        if scene.name == POSTER_SCENE:
            stage.recorder.poster(poster)
        timings.append(SceneTiming(scene, start, stage.recorder.video_t, narration, prepare_s))
        progress.advance(task)
    return timings


def record_video(
    out: Path,
    *,
    plan: Plan,
    home: Path | None,
    photos: Path,
    mkdocs_config: Path,
    build_services: Callable[[Settings], Services],
    console: Console | None = None,
) -> dict[str, Any]:
    """Record the video into ``out`` (see the module docstring); the manifest.

    ``home``: the system's work folder (default: a temporary one, removed afterwards); a
    champion is trained there when it has none.
    """
    console = console or Console(stderr=True)
    photo = pick_photo(photos)
    out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()

    def say(message: str) -> None:
        console.print(f"  - {message}", highlight=False, markup=False)

    with tempfile.TemporaryDirectory(prefix=".video-", dir=out) as scratch:
        work = Path(scratch)
        system_home = home or work / "home"
        clips, voice_note = _narrate(work, plan, say)
        poster_tmp = work / "poster.png"
        with (
            _no_proxy_for_loopback(),
            running_system(system_home, mkdocs_config, build_services, say) as system,
            _browser(plan) as context,
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress,
        ):
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            recorder = Recorder(page, work / "frames")
            garment = garment_png(system.traffic, GARMENT_CLASS)
            stage = Stage(page, recorder, system, garment, photo, plan.short)
            timings = _film(stage, system, clips, poster_tmp, progress)
            if errors:
                raise VideoError(f"JavaScript errors on the pages: {errors}")
            models = {"champion": system.champion_version, "promoted": system.served_version()}
        end = recorder.video_t
        cues = [Cue(t.start_s, t.end_s, t.scene.subtitle, t.scene.name) for t in timings]
        vtt = out / f"{NAME}.vtt"
        write_vtt(vtt, cues)
        audio = None
        if clips:
            audio = work / "narration.wav"
            voice.mix_track([(t.start_s, clips[t.scene.name]) for t in timings], end, audio)
        video = out / f"{NAME}.mp4"
        say("encoding H.264 with ffmpeg")
        encode(recorder.frames, end, video, fps=plan.fps, subtitles=vtt, audio=audio)
        poster = out / f"{NAME}-poster.png"
        atomic_write_bytes(poster, poster_tmp.read_bytes())
        frames = len(recorder.frames)
    info = probe(video)
    manifest = {
        "variant": plan.variant,
        "video": video.name,
        "subtitles": vtt.name,
        "poster": poster.name,
        "duration_s": round(info.duration_s, 3),
        "timeline_s": round(end, 3),
        "size_bytes": video.stat().st_size,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "codec": info.codec,
        "pixel_format": info.pixel_format,
        "streams": info.streams,
        "frames_captured": frames,
        "voice": bool(clips),
        "voice_note": voice_note,
        "photo": photo.name,
        "models": models,
        "scenes": [t.to_dict(plan.short) for t in timings],
        "recording_wall_s": round(time.monotonic() - began, 1),
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fmnist_version": __version__,
        "git_commit": git_commit(),
        "machine": benchmark_machine(),
    }
    atomic_write_text(out / "video.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


@contextlib.contextmanager
def _no_proxy_for_loopback() -> Iterator[None]:
    """Requests to the servers on loopback never go through a configured proxy."""
    saved = {k: os.environ.get(k) for k in ("NO_PROXY", "no_proxy")}
    extra = "127.0.0.1,localhost"
    for key, value in saved.items():
        os.environ[key] = f"{value},{extra}" if value else extra
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
