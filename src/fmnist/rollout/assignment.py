"""Sticky A/B assignment: the same client always gets the same arm of an experiment.

A client's arm is decided by hashing its id with the experiment's salt (SHA-256, the first 64
bits as a number in [0, 1)): below ``challenger_share`` it is the challenger, otherwise the
champion. No state is kept, every server process agrees, and a new salt (a new experiment)
reshuffles the clients independently of the last one.
"""

from __future__ import annotations

import hashlib
from typing import Literal

Arm = Literal["champion", "challenger"]
CHAMPION: Arm = "champion"
CHALLENGER: Arm = "challenger"
SHADOW_SUFFIX = ":shadow"
"""Appended to a request id for the challenger's prediction of the same request (shadow)."""


def bucket(client_id: str, salt: str) -> float:
    """The client's position in [0, 1) for the experiment salted ``salt``."""
    digest = hashlib.sha256(f"{salt}\x1f{client_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_arm(client_id: str, salt: str, challenger_share: float) -> Arm:
    """The arm of ``client_id`` when the challenger takes ``challenger_share`` (0..1)."""
    if not 0.0 <= challenger_share <= 1.0:
        raise ValueError(f"challenger_share must be in [0, 1], got {challenger_share}")
    return CHALLENGER if bucket(client_id, salt) < challenger_share else CHAMPION
