"""Client ids as the prediction log stores them: salted, keyed hashes, never the raw value.

A client names itself with the ``X-Client-ID`` header. The log keeps
``HMAC-SHA256(salt, client id)`` (32 hex digits), so the stored value can neither be reversed nor
matched against a list of guessed ids by anyone without the salt, while the same client still
gets the same value (per-client analyses and ``fmnist monitor purge --client`` work).

The salt is ``monitoring.client_id_salt`` when set (a secret shared by every replica, e.g. from
Secret Manager); otherwise a random 256-bit salt created once in
``<home>/security/client_id_salt`` (mode 0600). Creation is race-free across processes: the
first writer links its file into place and everyone else reads that one.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import tempfile
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING

from fmnist.identity import digest_text
from fmnist.monitoring.errors import MonitoringError

if TYPE_CHECKING:
    from fmnist.config import Settings

HASH_LENGTH = 32
"""Hex digits kept of each client hash."""

_SALT_BYTES = 32


class ClientIdHasher:
    """Turns a client's id into the value the log stores."""

    def __init__(self, salt: bytes) -> None:
        """Hash with ``salt`` (at least 16 bytes)."""
        if len(salt) < 16:
            raise MonitoringError("the client id salt must be at least 16 bytes")
        self._salt = salt

    def __call__(self, client: str) -> str:
        """The stored form of ``client``; empty for an empty id."""
        if not client:
            return ""
        return hmac.new(self._salt, client.encode("utf-8"), sha256).hexdigest()[:HASH_LENGTH]

    def candidates(self, client: str) -> tuple[str, ...]:
        """Every stored form ``client`` may have: the salted one and the unsalted SHA-256 that
        logs written before salting hold (so a purge also finds those)."""
        return (self(client), digest_text(client, length=HASH_LENGTH))


def salt_path(settings: Settings) -> Path:
    """Where the generated salt lives: ``<home>/security/client_id_salt``."""
    return settings.home / "security" / "client_id_salt"


def _read_salt(path: Path) -> bytes:
    data = path.read_bytes().strip()
    try:
        salt = bytes.fromhex(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise MonitoringError(f"{path} is not a hex salt; delete it to create a new one") from None
    if len(salt) < 16:
        raise MonitoringError(f"{path} holds a salt shorter than 16 bytes")
    return salt


def load_or_create_salt(path: Path) -> bytes:
    """The salt stored at ``path``, created (random, 0600, synced) when there is none.

    Two processes racing here end with the same salt: each writes a private temporary file and
    hard-links it to ``path``; the link fails for all but the first, which then read its file.
    """
    if path.exists():
        return _read_salt(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:  # mkstemp: mode 0600
            out.write(secrets.token_hex(_SALT_BYTES))
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: use its salt
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return _read_salt(path)


def client_id_hasher(settings: Settings) -> ClientIdHasher:
    """The hasher the settings call for (``monitoring.client_id_salt`` or the stored salt)."""
    configured = settings.monitoring.client_id_salt
    if configured is not None:
        return ClientIdHasher(configured.get_secret_value().encode("utf-8"))
    return ClientIdHasher(load_or_create_salt(salt_path(settings)))
