"""The SQLite driver INSERT stores the same text as SQLAlchemy's own INSERT."""

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert
from sqlalchemy.dialects import sqlite

from tests.databases import migrated_database
from trw_platform.core.db import UTCDateTime, json_dumps, sqlite_timestamp
from trw_platform.telemetry.models import TelemetryEvent
from trw_platform.telemetry.normalize import Limits, normalize_event
from trw_platform.telemetry.statements import sqlite_insert_events

RECEIVED_AT = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
LIMITS = Limits(max_event_bytes=65536, max_clock_skew=timedelta(minutes=10))
EVENTS = [
    {
        "event_id": "evt_full",
        "ts": "2026-12-04T09:00:00.250000+02:00",
        "installation_id": "0123456789abcdef",
        "tool_name": "trw_learn",
        "duration_ms": 5,
        "input_tokens": "7",
        "pytest_passed": True,
        "mypy_passed": "no",
        "attributes": {"tool": "trw_learn"},
        "extra": {"nested": [1, 2.5, "ü"], "big": 2**70},
    },
    {"event": "tool_call", "timestamp": 1764840000},
    {"event_type": "ancient", "ts": "0001-01-01T00:00:00Z"},
]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    with migrated_database("sqlite", tmp_path):
        yield tmp_path / "test.db"


def _rows() -> list[dict[str, Any]]:
    rows = []
    for raw in EVENTS:
        row = normalize_event(raw, received_at=RECEIVED_AT, limits=LIMITS)
        row["organization_id"] = "org"
        rows.append(row)
    return rows


def _stored(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT * FROM telemetry_events ORDER BY id"
        ).fetchall()


def _without_ids(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [row[1:] for row in rows]


def test_driver_rows_match_sqlalchemy_rows(database: Path) -> None:
    rows = _rows()
    engine = create_engine(f"sqlite:///{database}", json_serializer=json_dumps)
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.execute(insert(TelemetryEvent.__table__), rows)
    engine.dispose()
    through_sqlalchemy = _stored(database)

    with sqlite3.connect(database) as connection:
        connection.execute("DELETE FROM telemetry_events")
        statement = sqlite_insert_events()
        connection.executemany(
            statement.sql, [tuple(statement.values(row)) for row in rows]
        )
    through_driver = _stored(database)

    assert len(through_driver) == len(EVENTS)
    assert _without_ids(through_driver) == _without_ids(through_sqlalchemy)


def test_driver_insert_skips_stored_keys(database: Path) -> None:
    rows = _rows()
    statement = sqlite_insert_events()
    values = [tuple(statement.values(row)) for row in rows]

    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA foreign_keys=OFF")
        first = connection.executemany(statement.sql, values).rowcount
        second = connection.executemany(statement.sql, values).rowcount

    # Only the first event has an event_id; the other two have no dedup key.
    assert (first, second) == (3, 2)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
        datetime(2026, 12, 4, 10, 0, 0, 123, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(2026, 12, 4, 1, 30, tzinfo=timezone(timedelta(hours=5))),
    ],
)
def test_sqlite_timestamp_is_sqlalchemy_text(value: datetime) -> None:
    dialect = sqlite.dialect()
    processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None

    assert sqlite_timestamp(value) == processor(value)
