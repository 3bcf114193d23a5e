from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from trw_platform.core.body import read_json_body
from trw_platform.core.db import SessionDep, utc_now
from trw_platform.core.errors import API_KEY_ERRORS, BadRequest, PayloadTooLarge
from trw_platform.orgs.dependencies import TelemetryReader, TelemetryWriter
from trw_platform.telemetry import ingest, queries
from trw_platform.telemetry.normalize import Limits
from trw_platform.telemetry.schemas import (
    HourlyRead,
    IngestRead,
    InstallationPage,
    InstallationRead,
    TelemetryEventPage,
    TelemetryEventRead,
    TelemetryLimitsRead,
    TelemetryStatsRead,
)

router = APIRouter(tags=["telemetry"], responses=API_KEY_ERRORS)
public_router = APIRouter(tags=["telemetry"], responses=API_KEY_ERRORS)

DEFAULT_WINDOW = timedelta(days=30)
# Events may be stamped up to the allowed clock skew ahead of the receive time,
# so an open-ended window reaches a little into the future.
DEFAULT_END_AHEAD = timedelta(hours=1)
# Bounds that keep window arithmetic (a 30-day default, hourly steps) in
# the range of datetime.
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 11, 30, tzinfo=UTC)
MAX_HOURLY_WINDOW = timedelta(days=93)
ENVELOPE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Body is not JSON or has no events list"},
    413: {"description": "Body or batch over the published caps"},
    415: {"description": "Body is not application/json"},
}
BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["events"],
                    "properties": {
                        "events": {
                            "type": "array",
                            "items": {"type": "object", "additionalProperties": True},
                        }
                    },
                },
                "example": {
                    "events": [
                        {
                            "event_type": "tool_invocation",
                            "tool_name": "trw_learn",
                            "duration_ms": 12.5,
                            "status": "success",
                            "ts": "2026-12-04T10:15:00+00:00",
                        }
                    ]
                },
            }
        },
    }
}

FromParam = Annotated[
    datetime | None, Query(alias="from", description="Window start, ISO 8601")
]
ToParam = Annotated[
    datetime | None, Query(alias="to", description="Window end, ISO 8601")
]


def _window(start: datetime | None, end: datetime | None) -> queries.Window:
    end = _bounded(end) if end is not None else utc_now() + DEFAULT_END_AHEAD
    if start is None:
        start = end - DEFAULT_WINDOW if end - EARLIEST > DEFAULT_WINDOW else EARLIEST
    start = _bounded(start)
    if start > end:
        raise BadRequest("'from' must not be after 'to'.", code="invalid_window")
    return queries.Window(start, end)


def _bounded(value: datetime) -> datetime:
    """Return the time in UTC; raises BadRequest outside EARLIEST..LATEST."""
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        value = LATEST + timedelta(days=1)
    if not EARLIEST <= value <= LATEST:
        raise BadRequest(
            f"Times must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}.",
            code="invalid_window",
        )
    return value


@public_router.get("/telemetry/limits")
async def read_telemetry_limits(request: Request) -> TelemetryLimitsRead:
    """Publish the caps that POST /v1/telemetry enforces."""
    settings = request.app.state.settings
    return TelemetryLimitsRead(
        max_events_per_batch=settings.TELEMETRY_MAX_EVENTS,
        max_event_bytes=settings.TELEMETRY_MAX_EVENT_BYTES,
        max_body_bytes=settings.TELEMETRY_MAX_BODY_BYTES,
        content_encodings=["identity", "gzip", "deflate"],
    )


async def read_batch(request: Request) -> list[Any]:
    """Read and check the batch envelope; raises 400, 413 or 415."""
    settings = request.app.state.settings
    body = await read_json_body(request, max_bytes=settings.TELEMETRY_MAX_BODY_BYTES)
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list):
        raise BadRequest(
            'The body must be a JSON object with an "events" list.',
            code="invalid_batch",
        )
    if len(events) > settings.TELEMETRY_MAX_EVENTS:
        raise PayloadTooLarge(
            f"The batch has {len(events)} events;"
            f" the maximum is {settings.TELEMETRY_MAX_EVENTS}."
        )
    return events


# Declared first among the route's parameters, so the body is read before the
# key lookup takes a database connection.
TelemetryBatch = Annotated[list[Any], Depends(read_batch)]


@router.post("/telemetry", responses=ENVELOPE_ERRORS, openapi_extra=BATCH_BODY)
async def create_telemetry_batch(
    events: TelemetryBatch,
    request: Request,
    session: SessionDep,
    principal: TelemetryWriter,
) -> IngestRead:
    """Submit a telemetry batch; each event is stored or rejected on its own."""
    settings = request.app.state.settings
    limits = Limits(
        max_event_bytes=settings.TELEMETRY_MAX_EVENT_BYTES,
        max_clock_skew=timedelta(seconds=settings.TELEMETRY_MAX_CLOCK_SKEW_SECONDS),
    )
    rows, result = ingest.prepare_batch(
        events, organization_id=principal.organization_id, limits=limits
    )
    if rows:
        # The writer stores the batch in a transaction of its own. Committing
        # the key's last use first leaves this session without a write lock.
        await session.commit()
        written = await request.app.state.telemetry_writer.write(rows)
        result.accepted = written.accepted
        result.duplicates += written.duplicates
    return IngestRead.model_validate(result, from_attributes=True)


@router.get("/telemetry/stats")
async def read_telemetry_stats(
    session: SessionDep,
    principal: TelemetryReader,
    start: FromParam = None,
    end: ToParam = None,
) -> TelemetryStatsRead:
    """Totals by event type, status and tool over a window (default 30 days)."""
    window = _window(start, end)
    result = await queries.stats(
        session, organization_id=principal.organization_id, window=window
    )
    return TelemetryStatsRead.model_validate(result)


@router.get("/telemetry/hourly")
async def read_telemetry_hourly(
    session: SessionDep,
    principal: TelemetryReader,
    start: FromParam = None,
    end: ToParam = None,
    event_type: Annotated[str | None, Query(max_length=100)] = None,
) -> HourlyRead:
    """Hourly buckets for charts, empty hours included (at most 93 days)."""
    window = _window(start, end)
    if window.end - window.start > MAX_HOURLY_WINDOW:
        raise BadRequest("The window is longer than 93 days.", code="invalid_window")
    buckets = await queries.hourly(
        session,
        organization_id=principal.organization_id,
        window=window,
        event_type=event_type,
    )
    return HourlyRead.model_validate({"event_type": event_type, "buckets": buckets})


@router.get("/telemetry/events")
async def list_telemetry_events(
    session: SessionDep,
    principal: TelemetryReader,
    start: FromParam = None,
    end: ToParam = None,
    event_type: Annotated[str | None, Query(max_length=100)] = None,
    installation_id: Annotated[str | None, Query(max_length=128)] = None,
    session_id: Annotated[str | None, Query(max_length=128)] = None,
    tool_name: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> TelemetryEventPage:
    """Raw events, newest first, paged with an opaque keyset cursor."""
    filters = queries.EventFilters(
        event_type, installation_id, session_id, tool_name, status
    )
    events, next_cursor = await queries.list_events(
        session,
        organization_id=principal.organization_id,
        window=_window(start or EARLIEST, end),
        filters=filters,
        limit=limit,
        cursor=cursor,
    )
    items = [TelemetryEventRead.model_validate(event) for event in events]
    return TelemetryEventPage(items=items, next_cursor=next_cursor)


@router.get("/installations")
async def list_installations(
    session: SessionDep,
    principal: TelemetryReader,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> InstallationPage:
    """Installations seen in telemetry, most recently active first."""
    installations, total = await queries.list_installations(
        session,
        organization_id=principal.organization_id,
        page=page,
        page_size=page_size,
    )
    items = [InstallationRead.model_validate(item) for item in installations]
    return InstallationPage(items=items, total=total, page=page, page_size=page_size)
