"""The labelled feedback of a log window as training rows and a held-out drifted window.

A prediction counts when it was logged with its input (the 28x28 the model saw) and has
feedback with a class label; feedback marking an item as outside the ten classes
("unknown") is excluded, as are the challenger's shadow scores (the same input twice).
Identical images are kept once (the first label wins) so an image never lands on both
sides. Each image goes to the holdout when the hash of its request id falls below
``holdout_fraction``: the split is reproducible and independent of the order of the log.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from fmnist.data.validation import content_ids
from fmnist.identity import digest_json
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.prediction_log import PredictionLog
from fmnist.rollout.assignment import SHADOW_SUFFIX

Images = npt.NDArray[np.uint8]
Labels = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class WindowData:
    """The window's labelled rows, split into training rows and the holdout."""

    train: tuple[Images, Labels]
    holdout: tuple[Images, Labels]
    lineage: dict[str, Any]

    @property
    def labelled(self) -> int:
        """Distinct labelled images in the window."""
        return len(self.train[1]) + len(self.holdout[1])


def _in_holdout(request_id: str, fraction: float) -> bool:
    digest = hashlib.sha256(request_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def window_data(
    log: PredictionLog,
    feedback: FeedbackStore,
    *,
    since: datetime | None,
    until: datetime | None,
    holdout_fraction: float,
) -> WindowData:
    """The labelled rows of the predictions logged in ``[since, until]``."""
    arrays = log.window_arrays(since=since, until=until)
    labels = {rid: label for rid, label, _ in feedback.labels(since)}
    keep: list[int] = []
    kept_labels: list[int] = []
    counts = {"predictions": 0, "without_input": 0, "unlabelled": 0, "unknown_excluded": 0}
    for i, raw_id in enumerate(arrays.request_ids):
        request_id = str(raw_id)
        if request_id.endswith(SHADOW_SUFFIX):
            continue
        counts["predictions"] += 1
        if request_id not in labels:
            counts["unlabelled"] += 1
        elif labels[request_id] is None:
            counts["unknown_excluded"] += 1
        elif not arrays.pixels[i].any():
            counts["without_input"] += 1
        else:
            keep.append(i)
            kept_labels.append(int(labels[request_id]))  # type: ignore[arg-type]
    images = np.ascontiguousarray(arrays.pixels[keep]).reshape(-1, 28, 28)
    ids = [str(arrays.request_ids[i]) for i in keep]
    _, first = np.unique(content_ids(images), return_index=True) if keep else ([], [])
    distinct = np.sort(np.asarray(first, dtype=np.int64))
    counts["duplicates_dropped"] = len(keep) - len(distinct)
    target = np.asarray(kept_labels, dtype=np.uint8)
    held = np.array([_in_holdout(ids[i], holdout_fraction) for i in distinct], dtype=bool)
    train_rows, holdout_rows = distinct[~held], distinct[held]
    stamps = arrays.timestamps[keep] if keep else arrays.timestamps[:0]
    lineage = {
        "log_window": {
            "since": None if since is None else since.isoformat(),
            "until": None if until is None else until.isoformat(),
            "first_prediction": _iso(stamps.min()) if len(stamps) else None,
            "last_prediction": _iso(stamps.max()) if len(stamps) else None,
            **counts,
            "labelled": len(distinct),
            "request_ids_sha256": digest_json(sorted(ids[i] for i in distinct), length=64),
        },
        "holdout_fraction": holdout_fraction,
    }
    return WindowData(
        train=(images[train_rows], target[train_rows]),
        holdout=(images[holdout_rows], target[holdout_rows]),
        lineage=lineage,
    )


def _iso(stamp: np.datetime64) -> str:
    return str(np.datetime_as_string(stamp, unit="us")) + "Z"
