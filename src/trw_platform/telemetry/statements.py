"""The upsert statements of telemetry ingest, built once per SQL dialect.

Building an ON CONFLICT statement costs about as much as running it for a
small batch, so each is made once and reused.
"""

from functools import cache
from typing import Any

from sqlalchemy import case, func
from sqlalchemy.dialects import postgresql, sqlite

from trw_platform.telemetry.models import Installation, TelemetryEvent, TelemetryHourly

HOURLY_COUNTERS = ("event_count", "error_count", "duration_count", "duration_ms_sum")


def _insert(dialect: str, table: Any) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@cache
def insert_events(dialect: str) -> Any:
    """Insert events, skip stored dedup keys, and return the keys inserted."""
    table = TelemetryEvent.__table__
    return (
        _insert(dialect, table)
        .on_conflict_do_nothing(index_elements=["organization_id", "dedup_key"])
        .returning(table.c.dedup_key)
    )


@cache
def upsert_hourly(dialect: str) -> Any:
    """Add a batch's counts to the hourly rollup rows."""
    table = TelemetryHourly.__table__
    insert = _insert(dialect, table)
    return insert.on_conflict_do_update(
        index_elements=["organization_id", "hour", "event_type", "status", "tool_name"],
        set_={name: table.c[name] + insert.excluded[name] for name in HOURLY_COUNTERS},
    )


@cache
def upsert_installations(dialect: str) -> Any:
    """Widen first and last seen, refresh versions and add to the event count."""
    table = Installation.__table__
    insert = _insert(dialect, table)
    new = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=["organization_id", "installation_id"],
        set_={
            "first_seen_at": case(
                (
                    new.first_seen_at < table.c.first_seen_at,
                    new.first_seen_at,
                ),
                else_=table.c.first_seen_at,
            ),
            "last_seen_at": case(
                (new.last_seen_at > table.c.last_seen_at, new.last_seen_at),
                else_=table.c.last_seen_at,
            ),
            "framework_version": func.coalesce(
                new.framework_version, table.c.framework_version
            ),
            "os_platform": func.coalesce(new.os_platform, table.c.os_platform),
            "python_version": func.coalesce(new.python_version, table.c.python_version),
            "event_count": table.c.event_count + new.event_count,
        },
    )
