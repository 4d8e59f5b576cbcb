"""The micro-batcher: coalescing, limits, per-model queues and error propagation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import pytest

from fmnist.serving.microbatch import MicroBatcher

Arrays = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]


class Recorder:
    """A fake model call: logits are each image's first pixel; records the batches."""

    def __init__(self, seconds: float = 0.0, fail: bool = False) -> None:
        self.seconds = seconds
        self.fail = fail
        self.batches: list[tuple[str, int]] = []
        self.threads: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, key: str, images: npt.NDArray[np.uint8]) -> Arrays:
        with self.lock:
            self.batches.append((key, len(images)))
            self.threads.append(threading.get_ident())
        time.sleep(self.seconds)
        if self.fail:
            raise RuntimeError(f"model {key} failed")
        first = images[:, 0, 0].astype(np.float32)
        logits = np.repeat(first[:, None], 3, axis=1)
        return logits, logits / 255.0


def image(value: int) -> npt.NDArray[np.uint8]:
    return np.full((28, 28), value, dtype=np.uint8)


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as pool:
        yield pool


def test_concurrent_calls_share_batches_and_get_their_own_rows(
    executor: ThreadPoolExecutor,
) -> None:
    model = Recorder(seconds=0.05)
    batcher: MicroBatcher[str] = MicroBatcher(model, executor, max_size=64, max_wait_s=1.0)

    async def main() -> list[float]:
        results = await asyncio.gather(*(batcher.predict("m", image(v)) for v in range(20)))
        return [float(logits[0]) for logits, _ in results]

    assert run(main()) == [float(v) for v in range(20)]
    # The calls of one event-loop turn, made while the worker was idle, form one batch.
    assert model.batches == [("m", 20)]


def test_calls_made_while_a_batch_runs_queue_behind_it(executor: ThreadPoolExecutor) -> None:
    model = Recorder(seconds=0.05)
    batcher: MicroBatcher[str] = MicroBatcher(model, executor, max_size=64, max_wait_s=1.0)

    async def main() -> None:
        first = asyncio.ensure_future(batcher.predict("m", image(0)))
        await asyncio.sleep(0.01)  # the first batch is running on the worker
        await asyncio.gather(first, *(batcher.predict("m", image(v)) for v in range(1, 8)))

    run(main())
    assert model.batches == [("m", 1), ("m", 7)]


def test_small_batches_run_on_the_loop_and_larger_ones_on_the_worker(
    executor: ThreadPoolExecutor,
) -> None:
    model = Recorder()
    batcher: MicroBatcher[str] = MicroBatcher(
        model, executor, max_size=64, max_wait_s=1.0, inline_max=2
    )

    async def main() -> list[float]:
        lone = await batcher.predict("m", image(7))
        pair = await asyncio.gather(*(batcher.predict("m", image(v)) for v in (1, 2)))
        many = await asyncio.gather(*(batcher.predict("m", image(v)) for v in range(3)))
        return [float(r[0][0]) for r in (lone, *pair, *many)]

    loop_thread = threading.get_ident()
    assert run(main()) == [7.0, 1.0, 2.0, 0.0, 1.0, 2.0]
    assert model.batches == [("m", 1), ("m", 2), ("m", 3)]
    assert model.threads[:2] == [loop_thread, loop_thread]
    assert model.threads[2] != loop_thread


def test_an_inline_failure_reaches_every_caller(executor: ThreadPoolExecutor) -> None:
    batcher: MicroBatcher[str] = MicroBatcher(
        Recorder(fail=True), executor, max_size=64, max_wait_s=1.0, inline_max=4
    )

    async def main() -> list[BaseException | Arrays]:
        return await asyncio.gather(
            *(batcher.predict("m", image(v)) for v in range(3)), return_exceptions=True
        )

    results = run(main())
    assert isinstance(results, list)
    assert all(isinstance(r, RuntimeError) for r in results) and len(results) == 3


def test_lone_request_does_not_wait_for_max_wait(executor: ThreadPoolExecutor) -> None:
    batcher: MicroBatcher[str] = MicroBatcher(Recorder(), executor, max_size=8, max_wait_s=5.0)
    started = time.perf_counter()
    run(batcher.predict("m", image(3)))
    assert time.perf_counter() - started < 1.0


def test_max_size_caps_a_batch(executor: ThreadPoolExecutor) -> None:
    model = Recorder(seconds=0.02)
    batcher: MicroBatcher[str] = MicroBatcher(model, executor, max_size=4, max_wait_s=1.0)

    async def main() -> None:
        await asyncio.gather(*(batcher.predict("m", image(v)) for v in range(13)))

    run(main())
    assert max(size for _, size in model.batches) <= 4
    assert sum(size for _, size in model.batches) == 13


def test_max_wait_starts_a_batch_while_another_runs() -> None:
    model = Recorder(seconds=0.3)
    with ThreadPoolExecutor(2) as pool:
        batcher: MicroBatcher[str] = MicroBatcher(model, pool, max_size=64, max_wait_s=0.02)

        async def main() -> float:
            first = asyncio.ensure_future(batcher.predict("m", image(1)))
            await asyncio.sleep(0.01)
            started = time.perf_counter()
            await batcher.predict("m", image(2))
            await first
            return time.perf_counter() - started

        waited = run(main())
    assert model.batches == [("m", 1), ("m", 1)]
    assert waited < 0.5  # ran beside the first batch instead of after it (0.3 + 0.3 s)


def test_models_are_never_mixed(executor: ThreadPoolExecutor) -> None:
    model = Recorder(seconds=0.02)
    batcher: MicroBatcher[str] = MicroBatcher(model, executor, max_size=64, max_wait_s=0.5)

    async def main() -> None:
        calls = [batcher.predict("a" if v % 2 else "b", image(v)) for v in range(10)]
        results = await asyncio.gather(*calls)
        assert [float(r[0][0]) for r in results] == [float(v) for v in range(10)]

    run(main())
    assert {key for key, _ in model.batches} == {"a", "b"}
    assert sum(size for _, size in model.batches) == 10


def test_a_failure_reaches_every_caller_of_the_batch(executor: ThreadPoolExecutor) -> None:
    batcher: MicroBatcher[str] = MicroBatcher(
        Recorder(seconds=0.02, fail=True), executor, max_size=64, max_wait_s=0.5
    )

    async def main() -> list[BaseException | Arrays]:
        calls = [batcher.predict("m", image(v)) for v in range(5)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = run(main())
    assert isinstance(results, list) and len(results) == 5
    assert all(isinstance(r, RuntimeError) and "model m failed" in str(r) for r in results)


def test_invalid_limits_are_rejected(executor: ThreadPoolExecutor) -> None:
    with pytest.raises(ValueError, match="max_size"):
        MicroBatcher(Recorder(), executor, max_size=0, max_wait_s=0.0)
    with pytest.raises(ValueError, match="inline_max"):
        MicroBatcher(Recorder(), executor, max_size=1, max_wait_s=0.0, inline_max=-1)
