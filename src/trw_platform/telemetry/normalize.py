"""Turn one loosely typed client event into a row, or a reason to reject it.

Three client generations send telemetry: pipeline events with ``event_type``
and ``ts``, legacy ``TelemetryEvent`` records with ``timestamp``, and legacy
tool records with ``event: "tool_call"`` and no ``event_type`` at all. Known
fields go to columns. Everything else, and any known field whose value does
not fit its column, stays in the ``payload`` object under its own name.

An event is rejected only when it cannot be stored at all: it is not an
object, it is too large or too deeply nested, it contains a string that
neither database can store (a NUL character or a lone surrogate), or its
``event_id`` is not a short string.
"""

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson

from trw_platform.core.body import Unstorable

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
MAX_DEPTH = 32
INT64_MAX = 2**63 - 1
UNKNOWN_INSTALLATION = "unknown"
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_CONSUMED = frozenset({"event_id", "ts", "timestamp"})
_CONTAINER_TYPES = frozenset({dict, list})


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
    _check_depth(raw)
    raw, size = _make_storable(raw)
    if size > limits.max_event_bytes:
        raise RejectedEvent(
            f"event is {size} bytes as JSON; the maximum is {limits.max_event_bytes}"
        )

    row: dict[str, Any] = {"event_id": _event_id(raw)}
    payload = _fill_columns(raw, row)
    _fill_type_and_attributes(raw, row, payload)
    _fill_legacy_aliases(raw, row)
    _fill_times(raw, row, payload, received_at, limits.max_clock_skew)
    row["payload"] = payload
    row["dedup_key"] = _dedup_key(row)
    return row


def _check_depth(raw: dict[str, Any]) -> None:
    # Most events are flat; the parsers build exactly dict and list.
    if _CONTAINER_TYPES.isdisjoint(map(type, raw.values())):
        return
    level = [value for value in raw.values() if isinstance(value, (dict, list))]
    for _ in range(MAX_DEPTH - 1):
        if not level:
            return
        level = [
            child
            for value in level
            for child in (value.values() if isinstance(value, dict) else value)
            if isinstance(child, (dict, list))
        ]
    if level:
        raise RejectedEvent(
            f"event nests objects or arrays deeper than {MAX_DEPTH} levels"
        )


def _make_storable(raw: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Return the event as stored and its JSON size; raises when it cannot be.

    Numbers without an exact JSON form (NaN, Infinity, 1e400) are kept as
    their text, so the event is stored and nothing the client sent is lost.
    """
    try:
        encoded = orjson.dumps(raw)
    except TypeError:
        # orjson writes neither integers beyond 64 bits, lone surrogates nor
        # the markers for unstorable numbers.
        raw = _replace_unstorable(raw)
        encoded = _encode_with_json(raw)
    # The byte search is a cheap filter; _has_nul rules out an escaped "\\u0000".
    if b"\\u0000" in encoded and _has_nul(raw):
        raise RejectedEvent(
            "event contains a NUL character, which neither database can store"
        )
    return raw, len(encoded)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _replace_unstorable(value: Any) -> Any:
    if isinstance(value, Unstorable):
        return value.text
    if isinstance(value, dict):
        return {key: _replace_unstorable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_unstorable(item) for item in value]
    return value


def _encode_with_json(raw: dict[str, Any]) -> bytes:
    text = json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise RejectedEvent(
            "event contains invalid Unicode (a lone surrogate); send valid UTF-8"
        ) from exc


def _event_id(raw: dict[str, Any]) -> str | None:
    value = raw.get("event_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RejectedEvent(
            f"field 'event_id' must be a string, not {_json_type(value)}"
        )
    text = str(value)
    if not text or len(text) > EVENT_ID_MAX:
        raise RejectedEvent(f"field 'event_id' must be 1 to {EVENT_ID_MAX} characters")
    return text


def _fill_type_and_attributes(
    raw: dict[str, Any], row: dict[str, Any], payload: dict[str, Any]
) -> None:
    row["event_type"] = _event_type(raw)
    original = raw.get("event_type")
    # The column stores the derived or shortened type, and the payload keeps
    # the original.
    if "event_type" in raw and original != row["event_type"]:
        payload["event_type"] = original
    else:
        payload.pop("event_type", None)

    attributes = raw.get("attributes")
    row["attributes"] = attributes if isinstance(attributes, dict) else None
    if row["attributes"] is not None:
        payload.pop("attributes", None)


def _event_type(raw: dict[str, Any]) -> str:
    for field in ("event_type", "event"):
        value = raw.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip()[:EVENT_TYPE_MAX]
    return "unknown"


def _fill_columns(raw: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """Fill the typed columns and return the payload: every other field.

    A known field whose value does not convert to its column's type stays in
    the payload under its own name, and its column is left empty.
    """
    row.update(_EMPTY_COLUMNS)
    payload = {}
    for name, value in raw.items():
        max_length = STRING_COLUMNS.get(name)
        if type(value) is str and max_length is not None and len(value) <= max_length:
            row[name] = value  # the common case, without a call
            continue
        convert = _CONVERTERS.get(name)
        if convert is None:
            if name not in _CONSUMED:
                payload[name] = value
            continue
        if value is None:
            continue
        converted = convert(value)
        if converted is None:
            payload[name] = value
        row[name] = converted
    return payload


def _fill_legacy_aliases(raw: dict[str, Any], row: dict[str, Any]) -> None:
    # Legacy tool records name the tool "tool" and report only "success".
    if row["tool_name"] is None:
        row["tool_name"] = _to_string(raw.get("tool"), STRING_COLUMNS["tool_name"])
    if row["status"] is None and isinstance(raw.get("success"), bool):
        row["status"] = "success" if raw["success"] else "error"


def _fill_times(
    raw: dict[str, Any],
    row: dict[str, Any],
    payload: dict[str, Any],
    received_at: datetime,
    max_skew: timedelta,
) -> None:
    stamp = raw.get("ts")
    if stamp is None:
        stamp = raw.get("timestamp")
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


def _dedup_key(row: dict[str, Any]) -> str | None:
    """Return the key that stores an event once: first_session, then event_id."""
    installation = row["installation_id"]
    if row["event_type"] == "first_session" and installation not in (
        None,
        UNKNOWN_INSTALLATION,
    ):
        return f"first_session:{installation}"
    if row["event_id"]:
        return f"id:{row['event_id']}"
    return None


def _to_string(value: Any, max_length: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= max_length else None


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            value = _to_float(value)
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            return None
        value = int(value)
    if not isinstance(value, int) or abs(value) > INT64_MAX:
        return None
    return value


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


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    **{
        name: partial(_to_string, max_length=max_length)
        for name, max_length in STRING_COLUMNS.items()
    },
    **dict.fromkeys(FLOAT_COLUMNS, _to_float),
    **dict.fromkeys(INT_COLUMNS, _to_int),
    **dict.fromkeys(BOOL_COLUMNS, _to_bool),
}
_EMPTY_COLUMNS = dict.fromkeys(_CONVERTERS)


def _parse_time(value: Any) -> datetime | None:
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # Epoch seconds, or milliseconds when the number is that large.
            seconds = value / 1000 if value > 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip())
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean"}
    for python_type, name in names.items():
        if isinstance(value, python_type):
            return name
    return "null" if value is None else "number"
