"""Helpers of data-parallel training outside a process group."""

from __future__ import annotations

import numpy as np

from fmnist.training.distributed import any_rank, is_primary, shard_indices, without_option, world


def test_one_process_is_rank_0_of_1_and_holds_every_row() -> None:
    assert world() == (0, 1) and is_primary()
    rows = shard_indices(10, epoch=1, seed=0)
    assert sorted(rows.tolist()) == list(range(10))
    assert not np.array_equal(rows, shard_indices(10, epoch=2, seed=0))  # reshuffled per epoch
    assert any_rank(True) and not any_rank(False)


def test_the_relaunch_drops_only_the_nproc_option() -> None:
    argv = ["train", "--nproc", "2", "--epochs", "1", "--nproc=4", "--no-progress"]
    assert without_option(argv, "--nproc") == ["train", "--epochs", "1", "--no-progress"]
