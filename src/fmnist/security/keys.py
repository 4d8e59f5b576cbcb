"""API keys with scopes, stored hashed in ``<home>/security/api_keys.json``.

A key is ``fmk_<id>_<secret>`` (the secret: 32 random bytes, URL-safe base64). Only the id,
the name, the scopes, the times and the SHA-256 of the whole key are stored (a random 256-bit
secret needs no slow hash), so the file never holds a usable key; the key itself is printed
once, by ``fmnist keys create``. Verification compares digests in constant time. The file is
replaced atomically on every change and re-read when it changes, so a key created or revoked
by the CLI reaches running servers without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fmnist.atomic import atomic_write_bytes
from fmnist.errors import FmnistError

SCOPES = ("predict", "explain", "feedback", "admin")
PREFIX = "fmk_"


class ApiKeyError(FmnistError):
    """A key command was given something invalid (unknown scope or key id)."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never the key itself)."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    sha256: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        """Whether the key may be used."""
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        """What ``fmnist keys list`` shows (no digest)."""
        return {k: v for k, v in asdict(self).items() if k != "sha256"}


def key_store_path(home: Path, configured: Path | None) -> Path:
    """Where the keys of ``home`` are kept (``security.keys_path`` when set)."""
    return configured or home / "security" / "api_keys.json"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The keys of one home folder (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        """Keys in ``path`` (created on the first key)."""
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._keys: dict[str, ApiKey] = {}

    def _load(self) -> dict[str, ApiKey]:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime
            except FileNotFoundError:
                self._keys, self._mtime = {}, None
                return self._keys
            if mtime != self._mtime:
                entries = json.loads(self.path.read_bytes())
                self._keys = {
                    e["key_id"]: ApiKey(**{**e, "scopes": tuple(e["scopes"])}) for e in entries
                }
                self._mtime = mtime
            return self._keys

    def _save(self, keys: dict[str, ApiKey]) -> None:
        payload = [asdict(k) for k in keys.values()]
        atomic_write_bytes(self.path, json.dumps(payload, indent=2).encode())
        self.path.chmod(0o600)

    def records(self) -> list[ApiKey]:
        """Every key, oldest first."""
        return sorted(self._load().values(), key=lambda k: k.created_at)

    def create(self, name: str, scopes: list[str]) -> tuple[str, ApiKey]:
        """A new key for ``scopes``: ``(the key, its record)``; the key is not kept."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ApiKeyError(
                f"unknown or missing scope {unknown or scopes}: choose from {', '.join(SCOPES)}"
            )
        key_id = secrets.token_hex(6)
        key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(
            key_id=key_id,
            name=name,
            scopes=tuple(s for s in SCOPES if s in scopes),
            sha256=_digest(key),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        keys = dict(self._load())
        keys[key_id] = record
        self._save(keys)
        return key, record

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke ``key_id`` (kept in the file, marked revoked)."""
        keys = dict(self._load())
        if key_id not in keys:
            raise ApiKeyError(f"no key {key_id!r}; see fmnist keys list")
        keys[key_id] = ApiKey(
            **{
                **asdict(keys[key_id]),
                "revoked_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        self._save(keys)
        return keys[key_id]

    def verify(self, key: str) -> ApiKey | None:
        """The active key record ``key`` belongs to, or None (unknown, malformed, revoked)."""
        if not key.startswith(PREFIX) or key.count("_") < 2:
            return None
        key_id = key[len(PREFIX) :].split("_", 1)[0]
        record = self._load().get(key_id)
        if record is None or not record.active:
            return None
        return record if hmac.compare_digest(record.sha256, _digest(key)) else None

    def has_scope(self, scope: str) -> bool:
        """Whether any active key carries ``scope``."""
        return any(k.active and scope in k.scopes for k in self._load().values())
