"""Fixtures of the gcp tests: the emulators, each started once per session."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from . import emulators


@pytest.fixture(scope="session")
def bigquery_emulator() -> Iterator[emulators.BigQueryEmulator]:
    """The BigQuery emulator (bqemulator), for the whole session; skipped (a failure under
    ``CI=true``) when bqemulator is not installed."""
    with contextlib.ExitStack() as stack:
        try:
            emulator = stack.enter_context(emulators.bigquery_emulator())
        except emulators.EmulatorNotInstalledError as exc:
            pytest.skip(str(exc))
        yield emulator


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """The Pub/Sub emulator (gcloud's), for the whole session: its ``host:port``; skipped (a
    failure under ``CI=true``) when gcloud or Java is not installed."""
    with contextlib.ExitStack() as stack:
        try:
            host = stack.enter_context(emulators.pubsub_emulator())
        except emulators.EmulatorNotInstalledError as exc:
            pytest.skip(str(exc))
        yield host


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """fake-gcs-server, for the whole session: its endpoint URL; skipped (a failure under
    ``CI=true``) when its binary is not installed."""
    with contextlib.ExitStack() as stack:
        try:
            endpoint = stack.enter_context(emulators.gcs_emulator())
        except emulators.EmulatorNotInstalledError as exc:
            pytest.skip(str(exc))
        yield endpoint
