"""Store a telemetry batch event by event, with hourly rollups and installations."""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.core.db import utc_now
from trw_platform.telemetry import statements
from trw_platform.telemetry.normalize import (
    UNKNOWN_INSTALLATION,
    Limits,
    RejectedEvent,
    normalize_event,
)

log = structlog.get_logger(__name__)

ERROR_STATUSES = frozenset({"error", "failure", "failed"})


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


def prepare_batch(
    events: list[Any], *, organization_id: str, limits: Limits
) -> tuple[list[dict[str, Any]], IngestResult]:
    """Normalize a batch: its rows to store, and its rejects and duplicates so far.

    An event with the same dedup key as an earlier event of the batch counts
    as a duplicate here; ``store_rows`` finds the ones already stored.
    """
    result = IngestResult()
    rows = _normalize_all(events, organization_id, utc_now(), limits, result)
    if result.rejected:
        log.info(
            "telemetry.events_rejected",
            organization_id=organization_id,
            count=len(result.rejected),
            first_reason=result.rejected[0]["reason"],
        )
    return rows, result


async def store_rows(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Store rows of any organizations, skipping stored dedup keys.

    Updates the hourly rollups and installations with the rows stored, and
    returns those rows. The caller commits.
    """
    stored = await _insert_events(session, rows)
    await _upsert_hourly(session, stored)
    await _upsert_installations(session, stored)
    return stored


def _normalize_all(
    events: list[Any],
    organization_id: str,
    received_at: datetime,
    limits: Limits,
    result: IngestResult,
) -> list[dict[str, Any]]:
    rows = []
    seen_keys: set[str] = set()
    for index, raw in enumerate(events):
        try:
            row = normalize_event(raw, received_at=received_at, limits=limits)
        except RejectedEvent as exc:
            result.rejected.append({"index": index, "reason": str(exc)})
            continue

        key = row["dedup_key"]
        if key is not None and key in seen_keys:
            result.duplicates += 1
            continue
        if key is not None:
            seen_keys.add(key)
        row["organization_id"] = organization_id
        rows.append(row)
    return rows


async def _insert_events(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert rows, skipping stored dedup keys; return the rows actually stored."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        stored_keys = await _insert_events_sqlite(session, rows)
    else:
        returned = await session.execute(statements.insert_events(dialect), rows)
        stored_keys = {key for (key,) in returned if key is not None}
    if stored_keys is None:
        return rows
    return [
        row
        for row in rows
        if row["dedup_key"] is None or row["dedup_key"] in stored_keys
    ]


async def _insert_events_sqlite(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> set[str] | None:
    """Insert through the driver; return the dedup keys stored, None for all.

    SQLite gives each inserted row the next rowid, and no other connection
    writes while this transaction holds the write lock. So when a statement
    skipped some rows, the ones it stored are the last ``rowcount`` rowids.
    """
    insert = statements.sqlite_insert_events()
    connection = await session.connection()
    stored_keys: set[str] = set()
    skipped = False
    for sql, parameters, chunk in insert.chunks(rows):
        result = await connection.exec_driver_sql(sql, tuple(parameters))
        stored = result.rowcount
        if stored == len(chunk):
            stored_keys.update(row["dedup_key"] for row in chunk if row["dedup_key"])
            continue
        skipped = True
        last = (await connection.exec_driver_sql("SELECT last_insert_rowid()")).scalar()
        keys = await connection.exec_driver_sql(
            "SELECT dedup_key FROM telemetry_events WHERE id > ? AND id <= ?",
            (last - stored, last),
        )
        stored_keys.update(key for (key,) in keys if key is not None)
    return stored_keys if skipped else None


async def _upsert_hourly(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    buckets: dict[tuple[str, datetime, str, str, str], list[float]] = defaultdict(
        lambda: [0, 0, 0, 0.0]
    )
    for row in rows:
        hour = row["occurred_at"].replace(minute=0, second=0, microsecond=0)
        key = (
            row["organization_id"],
            hour,
            row["event_type"],
            row["status"] or "",
            row["tool_name"] or "",
        )
        bucket = buckets[key]
        bucket[0] += 1
        bucket[1] += 1 if (row["status"] or "").lower() in ERROR_STATUSES else 0
        if row["duration_ms"] is not None:
            bucket[2] += 1
            bucket[3] += row["duration_ms"]
    if not buckets:
        return

    # Sorted keys give concurrent writers one lock order on PostgreSQL.
    values = [
        {
            "organization_id": organization_id,
            "hour": hour,
            "event_type": event_type,
            "status": status,
            "tool_name": tool_name,
            "event_count": count,
            "error_count": errors,
            "duration_count": timed,
            "duration_ms_sum": duration_sum,
        }
        for (organization_id, hour, event_type, status, tool_name), (
            count,
            errors,
            timed,
            duration_sum,
        ) in sorted(buckets.items())
    ]
    await _upsert(
        session, values, statements.upsert_hourly, statements.sqlite_upsert_hourly
    )


async def _upsert_installations(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> None:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        installation_id = row["installation_id"]
        if installation_id in (None, UNKNOWN_INSTALLATION):
            continue
        entry = seen.setdefault(
            (row["organization_id"], installation_id),
            {
                "organization_id": row["organization_id"],
                "installation_id": installation_id,
                "first_seen_at": row["occurred_at"],
                "last_seen_at": row["occurred_at"],
                "framework_version": None,
                "os_platform": None,
                "python_version": None,
                "event_count": 0,
            },
        )
        _merge_installation(entry, row)
    if not seen:
        return

    await _upsert(
        session,
        [seen[key] for key in sorted(seen)],
        statements.upsert_installations,
        statements.sqlite_upsert_installations,
    )


async def _upsert(
    session: AsyncSession,
    values: list[dict[str, Any]],
    statement: Callable[[str], Any],
    driver_statement: Callable[[], statements.DriverStatement],
) -> None:
    dialect = session.get_bind().dialect.name
    if dialect != "sqlite":
        await session.execute(statement(dialect), values)
        return
    connection = await session.connection()
    for sql, parameters, _chunk in driver_statement().chunks(values):
        await connection.exec_driver_sql(sql, tuple(parameters))


def _merge_installation(entry: dict[str, Any], row: dict[str, Any]) -> None:
    entry["event_count"] += 1
    entry["first_seen_at"] = min(entry["first_seen_at"], row["occurred_at"])
    if row["occurred_at"] >= entry["last_seen_at"]:
        entry["last_seen_at"] = row["occurred_at"]
    for name in ("framework_version", "os_platform", "python_version"):
        if row[name] is not None:
            entry[name] = row[name]
