"""Times given to ``fmnist monitor``: ISO 8601 or an age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.timespec import parse_time

NOW = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T08:30:00Z", datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
        ("2024-05-01T10:30:00+02:00", datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
        ("90m", NOW - timedelta(minutes=90)),
        ("24h", NOW - timedelta(hours=24)),
        ("1.5d", NOW - timedelta(hours=36)),
        ("2w", NOW - timedelta(days=14)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    parsed = parse_time(text, now=NOW)
    assert parsed == expected and parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["yesterday", "24", "5y", ""])
def test_invalid_times_name_the_value(text: str) -> None:
    with pytest.raises(MonitoringError, match=f"invalid time {text!r}"):
        parse_time(text, now=NOW)
