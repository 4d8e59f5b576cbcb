"""Bounds on decoding uploaded images, so that no upload can stall the service.

Three defences, each decided from the image header before any pixel is decoded:

1. **Limits.** Above ``serving.max_image_pixels`` pixels, or a decompression ratio (decoded
   bytes per uploaded byte) above ``serving.max_decompression_ratio`` for an image that would
   take more than :data:`BOMB_FLOOR_BYTES` decoded, the image is refused with 413 in
   microseconds. Natural images compress 2-50:1; a flat canvas in a small PNG approaches
   zlib's 1,032:1.
2. **Off the event loop.** Only tiny images (a few KiB and at most :data:`INLINE_PIXELS`
   pixels, such as 28x28 PNGs) are decoded on the event loop; everything else in a thread.
3. **Heavy images one at a time.** Images above ``serving.heavy_decode_pixels`` are decoded
   at most ``serving.heavy_decode_concurrency`` at a time per process, so a burst of large
   photos occupies one core, not all of them, and the small requests keep their latency.
   A request whose decoding has not finished within ``serving.decode_timeout_s`` (queueing
   included) gets 503 with ``Retry-After``; its thread still finishes (it cannot be
   interrupted) and only then frees its slot, so slots cannot pile up.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.concurrency import run_in_threadpool

from fmnist.errors import InvalidImageError
from fmnist.imaging.decode import decoded_bytes, header_info
from fmnist.serving.problems import ProblemError

if TYPE_CHECKING:
    from fmnist.config import ServingSettings

T = TypeVar("T")

INLINE_BYTES = 4 * 1024
"""Images up to this size may be decoded on the event loop (a 28x28 PNG is under 1 KiB)."""
INLINE_PIXELS = 128 * 128
"""... and only when their header says at most this many pixels."""
BOMB_FLOOR_BYTES = 16 * 1024 * 1024
"""The ratio limit applies to images that would take more than this decoded."""


class DecodeGuard:
    """The decoding policy of one server process (see the module docstring)."""

    def __init__(
        self,
        *,
        max_pixels: int,
        max_decompression_ratio: float,
        heavy_pixels: int,
        heavy_concurrency: int,
        timeout_s: float,
    ) -> None:
        """Refuse images above ``max_pixels`` or ``max_decompression_ratio``; decode images
        above ``heavy_pixels`` at most ``heavy_concurrency`` at a time; give up waiting after
        ``timeout_s``."""
        self.max_pixels = max_pixels
        self.max_ratio = max_decompression_ratio
        self.heavy_pixels = heavy_pixels
        self.timeout_s = timeout_s
        self._heavy_slots = asyncio.Semaphore(heavy_concurrency)

    @classmethod
    def from_settings(cls, serving: ServingSettings) -> DecodeGuard:
        """The guard ``serving.*`` describes."""
        return cls(
            max_pixels=serving.max_image_pixels,
            max_decompression_ratio=serving.max_decompression_ratio,
            heavy_pixels=serving.heavy_decode_pixels,
            heavy_concurrency=serving.heavy_decode_concurrency,
            timeout_s=serving.decode_timeout_s,
        )

    def pixels(self, data: bytes) -> int | None:
        """The pixel count the header announces (None: no readable header; the decoder will
        say why). Raises :class:`InvalidImageError` (``too_large``) for a bomb."""
        info = header_info(data)
        if info is None:
            return None
        width, height, mode = info
        count = width * height
        if count > self.max_pixels:
            raise InvalidImageError(
                "too_large",
                f"image is {width}x{height} = {count:,} pixels, above the limit of "
                f"{self.max_pixels:,}",
            )
        decoded = decoded_bytes(width, height, mode)
        ratio = decoded / max(len(data), 1)
        if decoded > BOMB_FLOOR_BYTES and ratio > self.max_ratio:
            raise InvalidImageError(
                "too_large",
                f"image is {width}x{height} ({mode}) from {len(data):,} bytes: it would "
                f"decompress {ratio:,.0f}-fold, above the limit of {self.max_ratio:,.0f} "
                "(a decompression bomb?)",
            )
        return count

    def sizes(self, blobs: Sequence[tuple[str, bytes]]) -> list[int | None]:
        """:meth:`pixels` of each ``(where, data)``; an error names its ``where``."""
        counts: list[int | None] = []
        for where, data in blobs:
            try:
                counts.append(self.pixels(data))
            except InvalidImageError as exc:
                raise InvalidImageError(exc.kind, f"{where}: {exc}") from exc
        return counts

    async def decode(
        self, blobs: Sequence[tuple[str, bytes]], fn: Callable[..., T], *args: object
    ) -> T:
        """Check ``blobs`` from their headers, then run ``fn(*args)`` (which decodes them) on
        the event loop when they are tiny, else in a thread, in a heavy slot when any is
        large."""
        counts = self.sizes(blobs)
        tiny = len(blobs) == 1 and len(blobs[0][1]) <= INLINE_BYTES
        if tiny and counts[0] is not None and counts[0] <= INLINE_PIXELS:
            return fn(*args)
        return await self.run(any((c or 0) > self.heavy_pixels for c in counts), fn, *args)

    async def run(self, heavy: bool, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a worker thread, within the time bound; in a heavy slot when
        ``heavy``."""
        if not heavy:
            return await run_in_threadpool(fn, *args)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        try:
            await asyncio.wait_for(self._heavy_slots.acquire(), self.timeout_s)
        except TimeoutError:
            raise self._timeout("waiting for a decoding slot") from None
        task = asyncio.ensure_future(run_in_threadpool(functools.partial(fn, *args)))
        task.add_done_callback(lambda _: self._heavy_slots.release())
        try:
            return await asyncio.wait_for(asyncio.shield(task), max(deadline - loop.time(), 0))
        except TimeoutError:
            task.add_done_callback(_consume)  # its error, if any, is nobody's to report
            raise self._timeout("decoding") from None

    def _timeout(self, what: str) -> ProblemError:
        return ProblemError(
            503,
            f"the image was not decoded within {self.timeout_s:g} s ({what}): the server is "
            "busy with large images; retry later or send a smaller image",
            slug="decode-timeout",
            headers={"Retry-After": str(max(1, round(self.timeout_s)))},
        )


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
