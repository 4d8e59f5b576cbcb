"""The scene list: unique names, a poster scene, a full video of 2 to 4 minutes."""

from __future__ import annotations

from fmnist.video.page import SCENES_BEGIN, SCENES_END, run_markdown, scenes_markdown
from fmnist.video.scenes import POSTER_SCENE, SCENES, SHORT_TARGET_S, intro_html, scene_names


def test_scenes_are_named_once_and_the_poster_is_one_of_them() -> None:
    names = scene_names()
    assert len(names) == len(set(names))
    assert POSTER_SCENE in names
    assert all(scene.subtitle.strip() and scene.title.strip() for scene in SCENES)


def test_the_full_video_targets_two_to_four_minutes() -> None:
    total = sum(scene.target(short=False) for scene in SCENES)
    assert 120 <= total <= 200  # room for actions that take longer than their target
    assert all(scene.target(short=True) == SHORT_TARGET_S for scene in SCENES)


def test_the_title_card_lists_the_scenes_that_follow() -> None:
    card = intro_html()
    assert all(scene.title in card for scene in SCENES[1:])


def test_the_docs_table_lists_every_scene() -> None:
    text = scenes_markdown()
    assert text.startswith(SCENES_BEGIN) and text.endswith(SCENES_END)
    for scene in SCENES:
        assert f"`{scene.name}`" in text
    assert "Clean validation images with feedback" in text  # the work before a scene


def test_the_run_summary_renders_a_manifest() -> None:
    manifest = {
        "variant": "full",
        "duration_s": 185.25,
        "size_bytes": 12_300_000,
        "width": 1280,
        "height": 720,
        "fps": 25.0,
        "codec": "h264",
        "pixel_format": "yuv420p",
        "streams": ["Video", "Subtitle"],
        "voice_note": "espeak-ng not on PATH: subtitles only",
        "recording_wall_s": 400.0,
        "models": {"champion": 1, "promoted": 2},
        "recorded_at": "2026-12-07T15:00:00+00:00",
        "machine": {"cpu": "A CPU", "cores_usable": 2, "load_average": [3.0, 2.5, 2.0]},
        "scenes": [{"name": "intro", "start_s": 0, "duration_s": 8.0, "prepare_s": 0.0}],
    }
    text = run_markdown(manifest)
    assert "**3 min 05.2 s** (185.2 s), **12.3 MB**, 1280x720 at 25 fps" in text
    assert "| `intro` | 0.0 s | 8.0 s | 0.0 s |" in text
