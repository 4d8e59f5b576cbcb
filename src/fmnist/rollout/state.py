"""The live rollout configuration on disk: ``<home>/rollout/state.json``.

Written atomically by whoever changes the rollout (the admin API, ``fmnist ab canary
--apply``); every server process reads it on its registry poll and at start-up, so a change
reaches all workers and survives a restart.
"""

from __future__ import annotations

import json
from pathlib import Path

from fmnist.atomic import atomic_write_bytes
from fmnist.config import RolloutSettings


def state_path(home: Path) -> Path:
    """Where the live rollout configuration of ``home`` is kept."""
    return home / "rollout" / "state.json"


def write_state(path: Path, config: RolloutSettings) -> None:
    """Persist ``config`` atomically (without ``audit_path``, a setting of the machine)."""
    payload = config.model_dump(mode="json", exclude={"audit_path"})
    atomic_write_bytes(path, json.dumps(payload, indent=2).encode())


def read_state(path: Path, base: RolloutSettings) -> RolloutSettings | None:
    """The configuration in ``path`` over ``base``, or None when there is no state file."""
    try:
        payload = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    return RolloutSettings.model_validate({**base.model_dump(), **payload})
