"""The append-only audit log of rollout decisions: who or what, when, why, with the numbers.

One JSON object per line in ``<home>/rollout/audit.jsonl`` (``rollout.audit_path``): time
(UTC), actor (``admin``, ``system``, a command), action (``rollout.change``, ``promote``,
``rollback``, ...), reason and details. Each entry is written with one ``write`` on a file
opened with ``O_APPEND`` and fsynced before :meth:`AuditLog.append` returns: an entry that was
acknowledged survives a crash. A line cut short by a crash is skipped when read.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class AuditLog:
    """The audit log at ``path`` (created on the first append)."""

    def __init__(self, path: Path) -> None:
        """Append to and read ``path``."""
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(
        self, actor: str, action: str, reason: str = "", details: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Write one entry durably and return it."""
        entry = {
            "time": datetime.now(UTC).isoformat(),
            "actor": actor,
            "action": action,
            "reason": reason,
            "details": dict(details or {}),
        }
        line = json.dumps(entry, sort_keys=True, default=str).encode() + b"\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def read(self, last: int | None = None) -> list[dict[str, Any]]:
        """The entries, oldest first (the newest ``last`` of them when given)."""
        if not self.path.is_file():
            return []
        entries = []
        for line in self.path.read_bytes().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                logger.warning("%s: skipping an unreadable audit line", self.path)
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries[-last:] if last else entries


def audit_path(home: Path, configured: Path | None) -> Path:
    """``rollout.audit_path``, or ``<home>/rollout/audit.jsonl``."""
    return configured if configured is not None else home / "rollout" / "audit.jsonl"
