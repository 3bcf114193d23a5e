"""Turn one loosely typed client event into a row, or a reason to reject it.

Three client generations send telemetry: pipeline events with ``event_type``
and ``ts``, legacy ``TelemetryEvent`` records with ``timestamp``, and legacy
tool records with ``event: "tool_call"`` and no ``event_type`` at all. Known
fields go to columns. Everything else, and any known field whose value does
not fit its column type, stays in the ``payload`` object, so nothing the
client sent is lost.
"""

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

STRING_COLUMNS = {
    "installation_id": 128,
    "session_id": 128,
    "framework_version": 64,
    "python_version": 32,
    "os_platform": 64,
    "tool_name": 200,
    "status": 32,
    "error_type": 200,
    "phase": 32,
}
FLOAT_COLUMNS = ("duration_ms", "ceremony_score", "cost_usd", "coverage_pct")
INT_COLUMNS = ("input_tokens", "output_tokens", "test_count")
BOOL_COLUMNS = ("pytest_passed", "static_checks_passed", "mypy_passed")
EVENT_TYPE_MAX = 100
EVENT_ID_MAX = 128
UNKNOWN_INSTALLATION = "unknown"
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_COLUMN_NAMES = frozenset(
    {*STRING_COLUMNS, *FLOAT_COLUMNS, *INT_COLUMNS, *BOOL_COLUMNS}
)
_CONSUMED = frozenset({"event_type", "event_id", "ts", "timestamp", "attributes"})


class RejectedEvent(Exception):
    """An event that cannot be stored; its message is the reason."""


@dataclass(frozen=True)
class Limits:
    max_event_bytes: int
    max_clock_skew: timedelta


def normalize_event(
    raw: Any, *, received_at: datetime, limits: Limits
) -> dict[str, Any]:
    """Return column values for one event; raises RejectedEvent."""
    if not isinstance(raw, dict):
        raise RejectedEvent(f"event must be a JSON object, not {_json_type(raw)}")
    size = _json_size(raw)
    if size > limits.max_event_bytes:
        raise RejectedEvent(
            f"event is {size} bytes as JSON; the maximum is {limits.max_event_bytes}"
        )

    payload = {
        key: value
        for key, value in raw.items()
        if key not in _CONSUMED and key not in _COLUMN_NAMES
    }
    row: dict[str, Any] = {
        "event_type": _event_type(raw),
        "event_id": _bounded_string(raw, "event_id", EVENT_ID_MAX),
        "attributes": raw.get("attributes")
        if isinstance(raw.get("attributes"), dict)
        else None,
    }
    if "attributes" in raw and row["attributes"] is None:
        payload["attributes"] = raw["attributes"]

    _fill_columns(raw, row, payload)
    _fill_legacy_aliases(raw, row)
    _fill_times(raw, row, payload, received_at, limits.max_clock_skew)
    row["payload"] = payload
    row["dedup_key"] = _dedup_key(row)
    return row


def _json_size(raw: dict[str, Any]) -> int:
    try:
        return len(orjson.dumps(raw))
    except TypeError:
        # orjson cannot write integers beyond 64 bits; json can.
        return len(json.dumps(raw, separators=(",", ":")))


def _fill_columns(
    raw: dict[str, Any], row: dict[str, Any], payload: dict[str, Any]
) -> None:
    for name, max_length in STRING_COLUMNS.items():
        row[name] = _bounded_string(raw, name, max_length)
    for name in FLOAT_COLUMNS:
        row[name] = _coerce(raw, name, _to_float, payload)
    for name in INT_COLUMNS:
        row[name] = _coerce(raw, name, _to_int, payload)
    for name in BOOL_COLUMNS:
        row[name] = _coerce(raw, name, _to_bool, payload)


def _fill_legacy_aliases(raw: dict[str, Any], row: dict[str, Any]) -> None:
    # Legacy tool records name the tool "tool" and report only "success".
    if row["tool_name"] is None and isinstance(raw.get("tool"), str):
        row["tool_name"] = raw["tool"][: STRING_COLUMNS["tool_name"]]
    if row["status"] is None and isinstance(raw.get("success"), bool):
        row["status"] = "success" if raw["success"] else "error"


def _fill_times(
    raw: dict[str, Any],
    row: dict[str, Any],
    payload: dict[str, Any],
    received_at: datetime,
    max_skew: timedelta,
) -> None:
    stamp = raw.get("ts", raw.get("timestamp"))
    occurred_at = _parse_time(stamp) if stamp is not None else None
    if stamp is not None and occurred_at is None:
        payload["unparsed_timestamp"] = stamp

    row["received_at"] = received_at
    row["clock_clamped"] = False
    if occurred_at is None:
        occurred_at = received_at
    elif occurred_at > received_at + max_skew:
        payload["client_timestamp"] = occurred_at.isoformat()
        occurred_at = received_at
        row["clock_clamped"] = True
    row["occurred_at"] = occurred_at


def _event_type(raw: dict[str, Any]) -> str:
    for field in ("event_type", "event"):
        value = raw.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip()[:EVENT_TYPE_MAX]
    return "unknown"


def _dedup_key(row: dict[str, Any]) -> str | None:
    if row["event_id"]:
        return f"id:{row['event_id']}"
    installation = row["installation_id"]
    if row["event_type"] == "first_session" and installation not in (
        None,
        UNKNOWN_INSTALLATION,
    ):
        return f"first_session:{installation}"
    return None


def _bounded_string(raw: dict[str, Any], name: str, max_length: int) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RejectedEvent(f"field {name!r} must be a string, not {_json_type(value)}")
    text = value if isinstance(value, str) else str(value)
    if len(text) > max_length:
        raise RejectedEvent(f"field {name!r} is longer than {max_length} characters")
    return text


def _coerce(
    raw: dict[str, Any], name: str, convert: Any, payload: dict[str, Any]
) -> Any:
    value = raw.get(name)
    if value is None:
        return None
    converted = convert(value)
    if converted is None:
        # Keep the original value in the payload under its own name.
        payload[name] = value
    return converted


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _to_int(value: Any) -> int | None:
    number = _to_float(value)
    if number is None or number != int(number) or abs(number) >= 2**63:
        return None
    return int(number)


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def _parse_time(value: Any) -> datetime | None:
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # Epoch seconds, or milliseconds when the number is that large.
            seconds = value / 1000 if value > 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip())
            return (
                parsed.replace(tzinfo=UTC)
                if parsed.tzinfo is None
                else parsed.astimezone(UTC)
            )
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _json_type(value: Any) -> str:
    names = {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        type(None): "null",
    }
    for python_type, name in names.items():
        if isinstance(value, python_type):
            return name
    return "number"
