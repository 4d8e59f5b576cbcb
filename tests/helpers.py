"""Helpers shared by the tests (importable as ``helpers`` from any test module)."""

from __future__ import annotations

import dataclasses
import gzip
import socket
from collections.abc import Callable

import numpy as np

from fmnist.data.sources import RawDataset
from fmnist.identity import digest_array


def subset(raw: RawDataset, n_train: int, n_test: int) -> RawDataset:
    """A smaller RawDataset whose checksums describe the kept rows."""
    train_images, train_labels = raw.train_images[:n_train], raw.train_labels[:n_train]
    test_images, test_labels = raw.test_images[:n_test], raw.test_labels[:n_test]
    checksums = {
        f"{name}-subset": digest_array(array)
        for name, array in (
            ("train_images", train_images),
            ("train_labels", train_labels),
            ("test_images", test_images),
            ("test_labels", test_labels),
        )
    }
    return dataclasses.replace(
        raw,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        source=f"{raw.source} (subset {n_train}/{n_test})",
        checksums=checksums,
    )


def closed_port() -> int:
    """A local TCP port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def image_set(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Writable copies of an images/labels pair, for injecting problems."""
    return np.array(images, copy=True), np.array(labels, copy=True)


def regzip_with_changed_byte(gz: bytes, offset: int = 100) -> bytes:
    """A valid gzip stream whose decompressed content differs from ``gz``'s in one byte."""
    content = bytearray(gzip.decompress(gz))
    content[offset] ^= 0x01
    return gzip.compress(bytes(content), compresslevel=1)


OfflineEnv = Callable[..., dict[str, str]]
"""The type of the ``offline_env`` fixture."""
