"""Salted client ids: stable per salt, unlinkable across salts, one salt per home."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from fmnist.config import MonitoringSettings, Settings, load_settings
from fmnist.identity import digest_text
from fmnist.monitoring.client_ids import (
    HASH_LENGTH,
    ClientIdHasher,
    client_id_hasher,
    load_or_create_salt,
    salt_path,
)
from fmnist.monitoring.errors import MonitoringError


def test_the_hash_is_keyed_stable_and_short() -> None:
    one, other = ClientIdHasher(b"a" * 32), ClientIdHasher(b"b" * 32)
    assert one("client-a") == one("client-a")
    assert len(one("client-a")) == HASH_LENGTH
    assert one("client-a") != other("client-a")  # another deployment cannot link the ids
    assert one("client-a") != digest_text("client-a", length=HASH_LENGTH)  # no dictionary
    assert one("") == ""
    assert one.candidates("client-a") == (
        one("client-a"),
        digest_text("client-a", length=HASH_LENGTH),
    )


def test_a_short_salt_is_refused() -> None:
    with pytest.raises(MonitoringError, match="at least 16 bytes"):
        ClientIdHasher(b"short")
    with pytest.raises(ValidationError):
        MonitoringSettings(client_id_salt=SecretStr("short"))


def test_the_generated_salt_is_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "security" / "client_id_salt"
    salt = load_or_create_salt(path)
    assert len(salt) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_salt(path) == salt
    assert [p.name for p in path.parent.iterdir()] == ["client_id_salt"]  # no temporary left


def _salt_of(path: str) -> bytes:
    return load_or_create_salt(Path(path))


def test_processes_racing_for_the_salt_agree(tmp_path: Path) -> None:
    path = tmp_path / "client_id_salt"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        salts = pool.map(_salt_of, [str(path)] * 8)
    assert len(set(salts)) == 1


def test_a_damaged_salt_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "client_id_salt"
    path.write_text("not hex")
    with pytest.raises(MonitoringError, match="is not a hex salt"):
        load_or_create_salt(path)


def test_the_settings_choose_the_salt(monkeypatch: pytest.MonkeyPatch) -> None:
    settings: Settings = load_settings().settings
    generated = client_id_hasher(settings)
    assert salt_path(settings).exists()
    assert client_id_hasher(settings)("x") == generated("x")
    monkeypatch.setenv("FMNIST_MONITORING__CLIENT_ID_SALT", "s" * 20)
    configured = client_id_hasher(load_settings().settings)
    assert configured("x") == ClientIdHasher(b"s" * 20)("x") != generated("x")
