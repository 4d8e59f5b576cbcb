"""WebVTT writing and parsing, the frame timeline's concat script, the narration track."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from fmnist.video.recorder import Frame, concat_script
from fmnist.video.voice import mix_track, wav_seconds
from fmnist.video.vtt import Cue, parse_timestamp, parse_vtt, render_vtt, timestamp, write_vtt


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "00:00:00.000"),
        (1.0004, "00:00:01.000"),
        (1.0006, "00:00:01.001"),
        (59.9996, "00:01:00.000"),
        (3725.25, "01:02:05.250"),
    ],
)
def test_timestamps_round_to_the_millisecond(seconds: float, text: str) -> None:
    assert timestamp(seconds) == text
    assert parse_timestamp(text) == pytest.approx(round(seconds, 3))


def test_short_and_bad_timestamps() -> None:
    assert parse_timestamp("01:02.500") == pytest.approx(62.5)
    for bad in ("1:2.5", "00:61.000", "00:00:00,000", ""):
        with pytest.raises(ValueError):
            parse_timestamp(bad)
    with pytest.raises(ValueError):
        timestamp(-0.1)


def test_cues_round_trip_in_order(tmp_path: Path) -> None:
    cues = [
        Cue(0.0, 2.5, "First scene", "intro"),
        Cue(2.5, 7.125, "Second scene,\non two lines", "upload"),
        Cue(8.0, 9.0, "A gap before it is allowed"),
    ]
    path = tmp_path / "x.vtt"
    write_vtt(path, cues)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("WEBVTT\n\nintro\n00:00:00.000 --> 00:00:02.500\nFirst scene\n")
    assert parse_vtt(text) == cues


def test_arrows_in_the_text_do_not_break_a_cue() -> None:
    (cue,) = parse_vtt(render_vtt([Cue(0, 1, "retrain --> canary --> promote")]))
    assert cue.text == "retrain -> canary -> promote"


@pytest.mark.parametrize(
    "cues",
    [
        [Cue(1.0, 1.0, "empty")],
        [Cue(2.0, 1.0, "backwards")],
        [Cue(0.0, 2.0, "a"), Cue(1.5, 3.0, "overlaps")],
        [Cue(0.0, 1.0, "  ")],
    ],
)
def test_invalid_cues_are_refused(cues: list[Cue]) -> None:
    with pytest.raises(ValueError):
        render_vtt(cues)


def test_parsing_skips_notes_and_needs_the_header() -> None:
    text = "WEBVTT - demo\n\nNOTE made by hand\n\n00:01.000 --> 00:02.000 align:start\nHi\n"
    assert parse_vtt(text) == [Cue(1.0, 2.0, "Hi")]
    with pytest.raises(ValueError):
        parse_vtt("00:01.000 --> 00:02.000\nHi\n")


def test_concat_script_shows_each_frame_until_the_next(tmp_path: Path) -> None:
    frames = [Frame(tmp_path / f"{i}.jpg", t) for i, t in enumerate([0.0, 0.5, 0.5, 2.0])]
    script = concat_script(frames, end=3.0).splitlines()
    assert script == [
        "ffconcat version 1.0",
        "file '0.jpg'",
        "duration 0.500000",
        "file '2.jpg'",  # 1.jpg is shown for no time: left out
        "duration 1.500000",
        "file '3.jpg'",
        "duration 1.000000",
        "file '3.jpg'",
    ]
    with pytest.raises(ValueError):
        concat_script([], end=1.0)


def _tone(path: Path, seconds: float, rate: int = 8000, value: int = 1000) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.full(round(seconds * rate), value, "<i2").tobytes())
    return path


def test_narration_clips_start_at_their_scenes(tmp_path: Path) -> None:
    first = _tone(tmp_path / "a.wav", 1.5, value=1000)
    second = _tone(tmp_path / "b.wav", 0.5, value=2000)
    out = tmp_path / "track.wav"
    mix_track([(0.0, first), (1.0, second)], total_s=2.0, out=out)
    assert wav_seconds(out) == pytest.approx(2.0)
    with wave.open(str(out), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    assert (samples[:8000] == 1000).all()  # the first clip, cut where the second starts
    assert (samples[8000:12000] == 2000).all()
    assert (samples[12000:] == 0).all()  # silence to the end of the video


def test_narration_clips_must_match(tmp_path: Path) -> None:
    a = _tone(tmp_path / "a.wav", 0.1, rate=8000)
    b = _tone(tmp_path / "b.wav", 0.1, rate=16000)
    with pytest.raises(ValueError, match="sample rate"):
        mix_track([(0.0, a), (0.5, b)], total_s=1.0, out=tmp_path / "x.wav")
    with pytest.raises(ValueError):
        mix_track([], total_s=1.0, out=tmp_path / "x.wav")
