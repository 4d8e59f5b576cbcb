"""Micro-batching: concurrent single-image predictions share one ONNX Runtime call.

Requests for the same model queue up; the queue becomes one batch when ``max_size`` images are
waiting, when ``max_wait_s`` has passed since the first, or, when no batch is running, at the
end of the current event-loop turn (so a lone request never waits for company: the wait only
happens while the inference thread is busy, which is exactly when company arrives). Batches run
on a worker thread, keeping the event loop free, except a batch of at most ``inline_max`` images
found while no batch runs: it runs on the loop itself, since handing a few images to a thread
and back costs more than the model (measured in ``benchmarks/bench_http.py``). A failure is
passed to every caller of the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]
Rows = tuple[FloatArray, FloatArray]
"""Logits and probabilities of one image, each ``(classes,)``."""

K = TypeVar("K", bound=Hashable)

BatchFn = Callable[[K, UInt8Array], tuple[FloatArray, FloatArray]]
"""Runs model ``K`` on images ``(N, 28, 28)``; returns logits and probabilities ``(N, C)``."""


class _Queue:
    __slots__ = ("futures", "images", "timer")

    def __init__(self) -> None:
        self.images: list[UInt8Array] = []
        self.futures: list[asyncio.Future[Rows]] = []
        self.timer: asyncio.Handle | None = None


class MicroBatcher(Generic[K]):
    """Groups concurrent single-image calls per model into batched calls on ``executor``."""

    def __init__(
        self,
        run_batch: BatchFn[K],
        executor: Executor,
        *,
        max_size: int,
        max_wait_s: float,
        inline_max: int = 0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """``run_batch`` does the work; batches of at most ``inline_max`` images found while no
        batch runs are run on the event loop (0: never); ``on_batch`` (optional) is told each
        batch's size."""
        if max_size < 1 or max_wait_s < 0 or inline_max < 0:
            raise ValueError("max_size must be >= 1, max_wait_s and inline_max >= 0")
        self._run_batch = run_batch
        self._executor = executor
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.inline_max = inline_max
        self._on_batch = on_batch
        self._queues: dict[K, _Queue] = {}
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def predict(self, key: K, image: UInt8Array) -> Rows:
        """Logits and probabilities of one ``(28, 28)`` image, computed within a batch."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        future: asyncio.Future[Rows] = loop.create_future()
        queue.images.append(image)
        queue.futures.append(future)
        if len(queue.images) >= self.max_size:
            self._flush(key)
        elif queue.timer is None:
            if self._running:
                queue.timer = loop.call_later(self.max_wait_s, self._flush, key)
            else:  # idle: the arrivals of this event-loop turn join the batch
                queue.timer = loop.call_soon(self._flush, key)
        return await future

    def _flush(self, key: K) -> None:
        queue = self._queues.pop(key, None)
        if queue is None:
            return
        if queue.timer is not None:
            queue.timer.cancel()
        if self._running == 0 and len(queue.images) <= self.inline_max:
            self._run_inline(key, queue)
            return
        self._running += 1
        task = asyncio.get_running_loop().create_task(self._run(key, queue))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _run_inline(self, key: K, queue: _Queue) -> None:
        """Run a small batch on the event loop (no thread hop)."""
        if self._on_batch is not None:
            self._on_batch(len(queue.images))
        try:
            logits, probabilities = self._run_batch(key, np.stack(queue.images))
        except Exception as exc:  # every caller of the batch gets the failure
            for future in queue.futures:
                if not future.done():
                    future.set_exception(exc)
            return
        for i, future in enumerate(queue.futures):
            if not future.done():
                future.set_result((logits[i], probabilities[i]))

    async def _run(self, key: K, queue: _Queue) -> None:
        futures = queue.futures
        try:
            images = np.stack(queue.images)
            if self._on_batch is not None:
                self._on_batch(len(images))
            loop = asyncio.get_running_loop()
            logits, probabilities = await loop.run_in_executor(
                self._executor, self._run_batch, key, images
            )
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()
            raise
        except Exception as exc:  # every caller of the batch gets the failure
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
        else:
            for i, future in enumerate(futures):
                if not future.done():  # a caller that went away is skipped
                    future.set_result((logits[i], probabilities[i]))
        finally:
            self._running -= 1
            if self._running == 0:  # the worker is free: start what queued meanwhile
                for waiting in list(self._queues):
                    self._flush(waiting)

    @property
    def pending(self) -> int:
        """Images waiting for a batch."""
        return sum(len(q.images) for q in self._queues.values())

    async def drain(self) -> None:
        """Flush every queue and wait for the running batches (at shutdown)."""
        for key in list(self._queues):
            self._flush(key)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
