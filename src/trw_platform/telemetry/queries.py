"""Telemetry reads: stats and hourly buckets, raw events, installations."""

import base64
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import BigInteger, Float, Select, and_, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.core.errors import BadRequest
from trw_platform.telemetry.models import Installation, TelemetryEvent, TelemetryHourly


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def first_hour(self) -> datetime:
        return self.start.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class EventFilters:
    event_type: str | None = None
    installation_id: str | None = None
    session_id: str | None = None
    tool_name: str | None = None
    status: str | None = None


def _sum_int(column: Any) -> Any:
    # PostgreSQL sums BIGINT as NUMERIC, which arrives as Decimal.
    return cast(func.sum(column), BigInteger)


def _sum_float(column: Any) -> Any:
    return cast(func.sum(column), Float)


def _hourly_in_window(organization_id: str, window: Window) -> list[Any]:
    return [
        TelemetryHourly.organization_id == organization_id,
        TelemetryHourly.hour >= window.first_hour,
        TelemetryHourly.hour <= window.end,
    ]


@dataclass
class _Totals:
    count: int = 0
    error_count: int = 0
    timed: int = 0
    duration_sum: float = 0.0

    def add(self, count: int, errors: int, timed: int, duration_sum: float) -> None:
        self.count += count
        self.error_count += errors
        self.timed += timed
        self.duration_sum += duration_sum

    @property
    def avg_duration_ms(self) -> float | None:
        return self.duration_sum / self.timed if self.timed else None


async def stats(
    session: AsyncSession, *, organization_id: str, window: Window
) -> dict[str, Any]:
    """Totals by event type, status and tool, summed from hourly rollups."""
    table = TelemetryHourly
    query = (
        select(
            table.event_type,
            table.status,
            table.tool_name,
            _sum_int(table.event_count),
            _sum_int(table.error_count),
            _sum_int(table.duration_count),
            _sum_float(table.duration_ms_sum),
        )
        .where(*_hourly_in_window(organization_id, window))
        .group_by(table.event_type, table.status, table.tool_name)
    )
    total = _Totals()
    by_type: dict[str, int] = defaultdict(int)
    by_status: dict[str, int] = defaultdict(int)
    tools: dict[str, _Totals] = defaultdict(_Totals)
    for event_type, status, tool, *counters in await session.execute(query):
        total.add(*counters)
        by_type[event_type] += counters[0]
        if status:
            by_status[status] += counters[0]
        if tool:
            tools[tool].add(*counters)

    ranked = sorted(tools.items(), key=lambda item: -item[1].count)
    return {
        "from": window.start,
        "to": window.end,
        "total": total.count,
        "error_count": total.error_count,
        "by_event_type": dict(by_type),
        "by_status": dict(by_status),
        "by_tool": {name: totals.count for name, totals in ranked},
        "tools": [
            {
                "tool_name": name,
                "count": totals.count,
                "error_count": totals.error_count,
                "avg_duration_ms": totals.avg_duration_ms,
            }
            for name, totals in ranked
        ],
    }


async def hourly(
    session: AsyncSession,
    *,
    organization_id: str,
    window: Window,
    event_type: str | None,
) -> list[dict[str, Any]]:
    """Return one bucket per hour of the window, empty hours included."""
    table = TelemetryHourly
    query = (
        select(
            table.hour,
            _sum_int(table.event_count),
            _sum_int(table.error_count),
            _sum_int(table.duration_count),
            _sum_float(table.duration_ms_sum),
        )
        .where(*_hourly_in_window(organization_id, window))
        .group_by(table.hour)
    )
    if event_type is not None:
        query = query.where(table.event_type == event_type)
    found = {row[0]: row[1:] for row in await session.execute(query)}

    buckets = []
    hour = window.first_hour
    while hour <= window.end:
        count, errors, timed, duration_sum = found.get(hour, (0, 0, 0, 0.0))
        buckets.append(
            {
                "hour": hour,
                "count": int(count),
                "error_count": int(errors),
                "avg_duration_ms": (duration_sum / timed) if timed else None,
            }
        )
        hour += timedelta(hours=1)
    return buckets


def encode_cursor(occurred_at: datetime, event_id: int) -> str:
    raw = orjson.dumps([occurred_at.isoformat(), event_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, event_id = orjson.loads(base64.urlsafe_b64decode(padded))
        occurred_at = datetime.fromisoformat(stamp).astimezone(UTC)
        if (
            isinstance(event_id, bool)
            or not isinstance(event_id, int)
            or not 0 < event_id < 2**63
        ):
            raise ValueError("cursor id out of range")
        return occurred_at, event_id
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadRequest(
            "The cursor is invalid; pass next_cursor from a previous page.",
            code="invalid_cursor",
        ) from exc


async def list_events(
    session: AsyncSession,
    *,
    organization_id: str,
    window: Window,
    filters: EventFilters,
    limit: int,
    cursor: str | None,
) -> tuple[list[TelemetryEvent], str | None]:
    """Events newest first, one keyset page at a time."""
    query = _filtered_events(organization_id, window, filters)
    if cursor is not None:
        occurred_at, last_id = decode_cursor(cursor)
        query = query.where(
            or_(
                TelemetryEvent.occurred_at < occurred_at,
                and_(
                    TelemetryEvent.occurred_at == occurred_at,
                    TelemetryEvent.id < last_id,
                ),
            )
        )
    query = query.order_by(TelemetryEvent.occurred_at.desc(), TelemetryEvent.id.desc())
    events = list(await session.scalars(query.limit(limit + 1)))

    next_cursor = None
    if len(events) > limit:
        events = events[:limit]
        next_cursor = encode_cursor(events[-1].occurred_at, events[-1].id)
    return events, next_cursor


def _filtered_events(
    organization_id: str, window: Window, filters: EventFilters
) -> Select[TelemetryEvent]:
    query = select(TelemetryEvent).where(
        TelemetryEvent.organization_id == organization_id,
        TelemetryEvent.occurred_at >= window.start,
        TelemetryEvent.occurred_at <= window.end,
    )
    for name in ("event_type", "installation_id", "session_id", "tool_name", "status"):
        value = getattr(filters, name)
        if value is not None:
            query = query.where(getattr(TelemetryEvent, name) == value)
    return query


async def list_installations(
    session: AsyncSession, *, organization_id: str, page: int, page_size: int
) -> tuple[list[Installation], int]:
    scope = Installation.organization_id == organization_id
    total = await session.scalar(
        select(func.count()).select_from(Installation).where(scope)
    )
    result = await session.scalars(
        select(Installation)
        .where(scope)
        .order_by(Installation.last_seen_at.desc(), Installation.installation_id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(result), total or 0
