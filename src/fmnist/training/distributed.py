"""Data-parallel training on CPU: PyTorch DDP over the gloo backend, launched by ``torchrun``.

``fmnist train --nproc N`` re-runs itself under ``torchrun --standalone --nproc-per-node N``.
Each process trains on its shard of every epoch (a :class:`DistributedSampler` over the
training rows, reshuffled per epoch), gradients are averaged by
:class:`~torch.nn.parallel.DistributedDataParallel`, and only rank 0 writes checkpoints, logs
to MLflow and exports the model. On a managed service the same command runs in each replica of
a Vertex AI custom job's worker pool (``docs/pipelines.md``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import cast

import numpy as np
import numpy.typing as npt
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler


def world() -> tuple[int, int]:
    """``(rank, world size)`` of this process: ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_primary() -> bool:
    """Whether this process logs, checkpoints and exports (rank 0, or not distributed)."""
    return world()[0] == 0


def launched_by_torchrun() -> bool:
    """Whether ``torchrun`` started this process (its environment variables are set)."""
    return "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextmanager
def process_group() -> Iterator[None]:
    """Join the gloo process group when launched by ``torchrun``; leave it afterwards."""
    if not launched_by_torchrun() or dist.is_initialized():
        yield
        return
    dist.init_process_group("gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def shard_indices(n: int, epoch: int, seed: int) -> npt.NDArray[np.int64]:
    """This rank's rows of an epoch: a shuffled, equal-sized share of ``range(n)``."""
    rank, size = world()
    rows = cast("Dataset[int]", range(n))  # a sized sequence is all the sampler reads
    sampler: DistributedSampler[int] = DistributedSampler(
        rows, num_replicas=size, rank=rank, shuffle=True, seed=seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    return np.fromiter(iter(sampler), dtype=np.int64)


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (a stop decision all ranks share)."""
    if world()[1] == 1:
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def without_option(argv: Sequence[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--opt V`` or ``--opt=V``)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            kept.append(arg)
    return kept


def relaunch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``fmnist <argv>`` in ``nproc`` processes under ``torchrun``; its exit status."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={nproc}", "-m", "fmnist", *argv,
    ]  # fmt: skip
    return subprocess.call(command)
