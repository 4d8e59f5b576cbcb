"""Webhook signatures: HMAC-SHA256 of the raw body, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from fmnist.monitoring.alert_delivery import sign, verify_signature

BODY = json.dumps({"alert": "drift_detected", "timestamp": "2025-01-01T12:00:00+00:00"}).encode()


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, "s3cret") == f"sha256={expected}"
    assert sign(BODY, SecretStr("s3cret")) == sign(BODY, "s3cret")


def test_verify_accepts_the_right_signature_only() -> None:
    header = sign(BODY, "s3cret")
    assert verify_signature(BODY, header, "s3cret")
    assert verify_signature(BODY, header, SecretStr("s3cret"))
    assert not verify_signature(BODY, header, "other")
    assert not verify_signature(BODY + b" ", header, "s3cret")  # any change to the body
    assert not verify_signature(BODY, header.replace("sha256=", "sha1="), "s3cret")
    assert not verify_signature(BODY, None, "s3cret")
    assert not verify_signature(BODY, "", "s3cret")


def test_max_age_rejects_replays_of_old_bodies() -> None:
    header = sign(BODY, "k")
    sent = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert verify_signature(BODY, header, "k", max_age_s=300, now=sent + timedelta(seconds=299))
    assert not verify_signature(BODY, header, "k", max_age_s=300, now=sent + timedelta(hours=1))
    unstamped = b'{"alert": "x"}'
    assert not verify_signature(unstamped, sign(unstamped, "k"), "k", max_age_s=300)
