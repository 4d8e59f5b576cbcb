"""SHA-256 identities of bytes, text, files, arrays and JSON-able values.

Every stored identity of the project (snapshot ids, training and baseline config hashes that find
reusable MLflow runs, data checksums, the batch job's manifest entries) is made here, so one
algorithm serves them all. The functions return lowercase hex digests; ``length`` keeps only the
first ``length`` hex digits (the short ids). Changing an encoding here changes identities that
are already stored: the tests pin one digest per function.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

_FILE_BLOCK = 1 << 20


def _hex(digest: Any, length: int | None) -> str:
    value: str = digest.hexdigest()
    return value if length is None else value[:length]


def digest_bytes(data: bytes, *, length: int | None = None) -> str:
    """The SHA-256 of ``data``."""
    return _hex(hashlib.sha256(data), length)


def digest_chunks(chunks: Iterable[bytes], *, length: int | None = None) -> str:
    """The SHA-256 of the concatenation of ``chunks``, hashed as they come (no join in memory)."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return _hex(digest, length)


def digest_text(text: str, *, length: int | None = None) -> str:
    """The SHA-256 of ``text`` encoded as UTF-8."""
    return digest_bytes(text.encode("utf-8"), length=length)


def digest_file(path: Path, *, length: int | None = None) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    with path.open("rb") as handle:
        return digest_chunks(iter(lambda: handle.read(_FILE_BLOCK), b""), length=length)


def digest_array(array: np.ndarray, *, length: int | None = None) -> str:
    """The SHA-256 of an array's raw bytes in C order (dtype and shape are not included)."""
    return digest_bytes(array.tobytes(), length=length)


def digest_json(value: Any, *, length: int | None = None, sort_keys: bool = True) -> str:
    """The SHA-256 of ``json.dumps(value, sort_keys=sort_keys)`` (default separators, ASCII).

    Sorted keys make the digest independent of dict order; ``sort_keys=False`` exists for
    identities that were stored with insertion order and must keep their value.
    """
    return digest_text(json.dumps(value, sort_keys=sort_keys), length=length)
