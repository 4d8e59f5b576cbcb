"""Fashion-MNIST test images for the web UI, drawn from the newest snapshot in the lake."""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fmnist import CLASS_NAMES
from fmnist.imaging.model_input import png_bytes
from fmnist.platform.storage import Storage


@dataclass(frozen=True)
class _TestSplit:
    snapshot_id: str
    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.integer[Any]]
    source_index: npt.NDArray[np.int32]


class SampleSource:
    """Loads the test split of the newest snapshot once and draws reproducible samples."""

    def __init__(self, lake: Storage) -> None:
        """Read from the data lake ``lake`` on first use."""
        self.lake = lake
        self._split: _TestSplit | None = None
        self._lock = threading.Lock()

    def _load(self) -> _TestSplit:
        with self._lock:
            if self._split is None:
                from fmnist.data.snapshot import load_snapshot

                snapshot = load_snapshot(self.lake)
                images, labels = snapshot.split("test")
                self._split = _TestSplit(
                    snapshot.snapshot_id, images, labels, snapshot.source_index["test"]
                )
            return self._split

    def draw(self, n: int, seed: int) -> dict[str, Any]:
        """``n`` distinct test images chosen by ``seed``, as base64 PNGs with their labels.

        Blocking (the first call reads the snapshot); raises
        :class:`~fmnist.errors.SnapshotNotFoundError` when the lake has no snapshot.
        """
        split = self._load()
        count = len(split.images)
        rng = np.random.default_rng(seed)
        picks = rng.choice(count, size=min(n, count), replace=False)
        samples = []
        for i in picks.tolist():
            class_id = int(split.labels[i])
            samples.append(
                {
                    "index": int(split.source_index[i]),
                    "label": CLASS_NAMES[class_id],
                    "class_id": class_id,
                    "png_b64": base64.b64encode(png_bytes(split.images[i])).decode("ascii"),
                }
            )
        return {"snapshot_id": split.snapshot_id, "samples": samples}
