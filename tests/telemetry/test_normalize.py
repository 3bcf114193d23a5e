"""normalize_event on its own: nesting limit, column types and the payload."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trw_platform.telemetry.normalize import (
    MAX_DEPTH,
    Limits,
    RejectedEvent,
    normalize_event,
)

RECEIVED_AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_event_bytes=65536, max_clock_skew=timedelta(minutes=10))


def _normalize(raw: Any) -> dict[str, Any]:
    return normalize_event(raw, received_at=RECEIVED_AT, limits=LIMITS)


def _nested(levels: int, container: str) -> Any:
    """Return ``levels`` objects or arrays, each inside the one before."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"child": value} if container == "object" else [value]
    return value


@pytest.mark.parametrize("container", ["object", "array"])
def test_nesting_limit_is_inclusive(container: str) -> None:
    # The event itself is the first level.
    deepest = _normalize({"event_type": "x", "n": _nested(MAX_DEPTH - 1, container)})
    assert deepest["event_type"] == "x"

    with pytest.raises(RejectedEvent, match=f"deeper than {MAX_DEPTH}"):
        _normalize({"event_type": "x", "n": _nested(MAX_DEPTH, container)})


def test_flat_event_fills_columns_and_payload() -> None:
    row = _normalize(
        {
            "event_type": "tool_invocation",
            "tool_name": "trw_learn",
            "duration_ms": "12.5",
            "input_tokens": 7.0,
            "mypy_passed": "yes",
            "status": "x" * 33,
            "profile": "claude-code",
            "ts": "2026-12-04T11:00:00+01:00",
        }
    )

    assert row["tool_name"] == "trw_learn"
    assert row["duration_ms"] == 12.5
    assert row["input_tokens"] == 7
    assert row["mypy_passed"] is True
    assert row["status"] is None
    assert row["occurred_at"] == datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    assert row["payload"] == {"status": "x" * 33, "profile": "claude-code"}


def test_null_known_field_stays_out_of_payload() -> None:
    row = _normalize({"event_type": "x", "tool_name": None, "cost_usd": None})

    assert row["tool_name"] is None
    assert row["cost_usd"] is None
    assert row["payload"] == {}
