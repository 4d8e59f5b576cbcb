"""The demo video's short (CI) variant: every scene filmed against the real system.

``record_video`` with the short plan (each scene about a second, 640x360) on a home with a tiny
champion: the real server, real drifted traffic, a real retrain, shadow, canary and promotion,
the docs site built by MkDocs, Debian's Chromium. Checks the MP4 (H.264, yuv420p, its
duration, faststart), the WebVTT (one cue per scene, in order, timed as the manifest says),
the poster and the manifest.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from data_paths import PHOTOS_ROOT, require_dir
from fmnist.composition import build_services
from fmnist.data.sources import RawDataset
from fmnist.video.record import NAME, SHORT, record_video
from fmnist.video.recorder import probe
from fmnist.video.scenes import SHORT_TARGET_S, scene_names
from fmnist.video.vtt import parse_vtt
from helpers import subset
from tracking_home import register_tiny_models

from .support import CHROMIUM, REPO_ROOT

pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed (pip install 'playwright==1.65.*')",
)
if not CHROMIUM.is_file():
    pytest.skip(
        f"{CHROMIUM} not found (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.browser, pytest.mark.network]


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory, raw_dataset: RawDataset, mlflow_template_db: Path
) -> tuple[Path, dict[str, object]]:
    """The short video, recorded once for the module; its folder and manifest.

    The snapshot holds 25,000 training images so that its validation split (10 %) has the
    2,500 images the scenario's traffic sends (the tiny preset trains on 5,000 of them), and
    the whole test set, on which the retrained candidate's non-inferiority gate is as tight as
    in the full video.
    """
    photos = require_dir(PHOTOS_ROOT)
    home = tmp_path_factory.mktemp("video-home")
    register_tiny_models(home, subset(raw_dataset, 25_000, 10_000), mlflow_template_db)
    out = tmp_path_factory.mktemp("video-out")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMNIST_HOME", str(home))
        manifest = record_video(
            out,
            plan=SHORT,
            home=home,
            photos=photos,
            mkdocs_config=REPO_ROOT / "mkdocs.yml",
            build_services=build_services,
        )
    return out, manifest


def top_level_boxes(data: bytes) -> list[str]:
    """The types of an MP4's top-level boxes, in order."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


def test_every_scene_is_filmed_into_an_h264_mp4(recorded: tuple[Path, dict[str, object]]) -> None:
    out, manifest = recorded
    video = out / f"{NAME}.mp4"
    info = probe(video)
    assert (info.codec, info.pixel_format) == ("h264", "yuv420p")
    assert (info.width, info.height, info.fps) == (SHORT.width, SHORT.height, SHORT.fps)
    assert info.streams == ["Video", "Subtitle"]  # no voice in the short variant
    timeline = float(manifest["timeline_s"])  # type: ignore[arg-type]
    assert info.duration_s == pytest.approx(timeline, abs=0.25)
    assert timeline >= len(scene_names()) * SHORT_TARGET_S
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(video))
    assert seconds == pytest.approx(timeline, abs=0.25)
    assert frames == pytest.approx(timeline * SHORT.fps, abs=3)
    boxes = top_level_boxes(video.read_bytes())
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart
    assert manifest["size_bytes"] == video.stat().st_size


def test_one_subtitle_per_scene_timed_as_filmed(recorded: tuple[Path, dict[str, object]]) -> None:
    out, manifest = recorded
    cues = parse_vtt((out / f"{NAME}.vtt").read_text(encoding="utf-8"))
    scenes = manifest["scenes"]
    assert isinstance(scenes, list)
    assert [c.identifier for c in cues] == [s["name"] for s in scenes] == scene_names()
    assert cues[0].start == 0
    for cue, following, scene in zip(cues, [*cues[1:], None], scenes, strict=True):
        assert cue.start == pytest.approx(scene["start_s"], abs=0.001)
        assert cue.end == pytest.approx(scene["end_s"], abs=0.001)
        assert cue.text == scene["subtitle"]
        assert scene["duration_s"] >= SHORT_TARGET_S - 0.001
        if following is not None:
            assert following.start == pytest.approx(cue.end, abs=0.001)  # back to back
    assert cues[-1].end == pytest.approx(manifest["timeline_s"], abs=0.001)


def test_poster_and_manifest(recorded: tuple[Path, dict[str, object]]) -> None:
    out, manifest = recorded
    with Image.open(out / f"{NAME}-poster.png") as poster:
        assert (poster.format, poster.size) == ("PNG", (SHORT.width, SHORT.height))
    assert json.loads((out / "video.json").read_text(encoding="utf-8")) == manifest
    assert manifest["variant"] == "short"
    assert manifest["voice"] is False
    assert manifest["models"] == {"champion": 1, "promoted": 2}  # retrained and promoted
    assert manifest["machine"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no scratch left
