"""Choosing the compute precision: bf16 autocast where the CPU has native bf16, else fp32."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch

Precision = Literal["bf16", "fp32"]


def cpu_supports_bf16() -> bool:
    """Whether the CPU has native bf16 instructions (AVX512-BF16 or AMX) on Linux."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def resolve_precision(requested: Literal["auto", "bf16", "fp32"]) -> Precision:
    """The precision to use: ``auto`` picks bf16 when the CPU supports it natively."""
    if requested == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return requested


def autocast(precision: Precision) -> contextlib.AbstractContextManager[None]:
    """An autocast context for training steps (a no-op for fp32)."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Temporarily set torch's intra-op thread count (None leaves it as is)."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
