"""The decoding policy of the API: bombs refused from the header, heavy images one at a time."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from data_paths import PHOTOS_VALIDATION
from fmnist.errors import InvalidImageError
from fmnist.serving.decode_guard import DecodeGuard
from fmnist.serving.problems import ProblemError


def png(size: tuple[int, int], mode: str = "1") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 0).save(out, "PNG", optimize=True)
    return out.getvalue()


def guard(**overrides: float) -> DecodeGuard:
    options = {
        "max_pixels": 40_000_000,
        "max_decompression_ratio": 200.0,
        "heavy_pixels": 4_000_000,
        "heavy_concurrency": 1,
        "timeout_s": 5.0,
        **overrides,
    }
    return DecodeGuard(**options)  # type: ignore[arg-type]


def test_a_flat_canvas_in_a_tiny_png_is_refused_from_its_header() -> None:
    bomb = png((6000, 5000))  # 30 Mpx in about 4 KiB: ~7,000-fold
    assert len(bomb) < 5_000
    with pytest.raises(InvalidImageError, match=r"decompress .*-fold, above the limit of 200") as e:
        guard().pixels(bomb)  # reads the header only; decoding it would take ~0.25 s
    assert e.value.kind == "too_large"


def test_the_pixel_limit_and_a_location_in_the_error() -> None:
    with pytest.raises(InvalidImageError, match=r"file 'x.png': image is 20000x20000"):
        guard().sizes([("file 'x.png'", png((20000, 20000)))])


def test_real_photos_and_small_images_pass() -> None:
    photos = sorted(PHOTOS_VALIDATION.rglob("*.jpg"))[:20]
    assert photos, f"no validation photos under {PHOTOS_VALIDATION}"
    check = guard()
    for photo in photos:
        assert check.pixels(Path(photo).read_bytes())
    assert check.pixels(png((28, 28), "L")) == 784
    assert check.pixels(b"not an image") is None  # the decoder says what it is


def test_heavy_images_are_decoded_one_at_a_time() -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    def decode() -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return "ok"

    async def main() -> list[str]:
        policy = guard()
        return await asyncio.gather(*(policy.run(True, decode) for _ in range(4)))

    assert asyncio.run(main()) == ["ok"] * 4
    assert peak == 1


def test_a_slow_decode_gets_503_and_keeps_its_slot_until_it_ends() -> None:
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.3)
        finished.set()

    async def main() -> tuple[ProblemError, ProblemError]:
        policy = guard(timeout_s=0.1)
        with pytest.raises(ProblemError) as decoding:
            await policy.run(True, slow)
        with pytest.raises(ProblemError) as queued:  # the slow thread still holds the slot
            await policy.run(True, lambda: None)
        await asyncio.to_thread(finished.wait, 5)
        await asyncio.sleep(0.01)  # the slot is freed by the thread's done callback
        assert await policy.run(True, lambda: "ok") == "ok"
        return decoding.value, queued.value

    decoding, queued = asyncio.run(main())
    for problem in (decoding, queued):
        assert problem.status == 503 and problem.slug == "decode-timeout"
        assert problem.headers == {"Retry-After": "1"}
    assert "(decoding)" in decoding.detail
    assert "(waiting for a decoding slot)" in queued.detail
