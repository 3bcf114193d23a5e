"""Store a telemetry batch event by event, with hourly rollups and installations."""

from collections import defaultdict
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
    returns those rows. The caller commits. On SQLite, ``sqlite_store`` does
    the same through the driver, faster.
    """
    dialect = session.get_bind().dialect.name
    returned = await session.execute(statements.insert_events(dialect), rows)
    stored = stored_rows(rows, {(org, key) for org, key in returned if key is not None})

    hourly = hourly_values(stored)
    if hourly:
        await session.execute(statements.upsert_hourly(dialect), hourly)
    installations = installation_values(stored)
    if installations:
        await session.execute(statements.upsert_installations(dialect), installations)
    return stored


def stored_rows(
    rows: list[dict[str, Any]], stored_keys: set[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Return the rows that were stored: those without a key or with a stored one.

    ``stored_keys`` contains (organization id, dedup key) pairs, because a group
    may carry the same key for two organizations.
    """
    return [
        row
        for row in rows
        if row["dedup_key"] is None
        or (row["organization_id"], row["dedup_key"]) in stored_keys
    ]


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


def hourly_values(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the rollup increments of stored rows, one per hour and kind."""
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
    # Sorted keys give concurrent writers one lock order on PostgreSQL.
    return [
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


def installation_values(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one upsert per installation seen in stored rows, sorted."""
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
    return [seen[key] for key in sorted(seen)]


def _merge_installation(entry: dict[str, Any], row: dict[str, Any]) -> None:
    entry["event_count"] += 1
    entry["first_seen_at"] = min(entry["first_seen_at"], row["occurred_at"])
    if row["occurred_at"] >= entry["last_seen_at"]:
        entry["last_seen_at"] = row["occurred_at"]
    for name in ("framework_version", "os_platform", "python_version"):
        if row[name] is not None:
            entry[name] = row[name]
