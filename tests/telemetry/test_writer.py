"""Group commit of telemetry batches: counts per batch, faults per batch."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import make_org
from trw_platform.telemetry.ingest import prepare_batch
from trw_platform.telemetry.models import TelemetryEvent, TelemetryHourly
from trw_platform.telemetry.normalize import Limits
from trw_platform.telemetry.writer import BatchWriter, Written

pytestmark = pytest.mark.anyio

LIMITS = Limits(max_event_bytes=65536, max_clock_skew=timedelta(minutes=10))


def _rows(organization_id: str, *event_ids: str) -> list[dict[str, Any]]:
    events = [
        {"event_id": event_id, "event_type": "probe", "ts": "2026-12-04T10:00:00Z"}
        for event_id in event_ids
    ]
    rows, _result = prepare_batch(
        events, organization_id=organization_id, limits=LIMITS
    )
    return rows


async def _stored_ids(db: AsyncSession, organization_id: str) -> list[str]:
    result = await db.scalars(
        select(TelemetryEvent.event_id)
        .where(TelemetryEvent.organization_id == organization_id)
        .order_by(TelemetryEvent.event_id)
    )
    return [event_id or "" for event_id in result]


@pytest.fixture
async def writer(app: FastAPI) -> AsyncIterator[BatchWriter]:
    """A writer as the app builds it: on SQLite, with a connection of its own."""
    writer = BatchWriter.for_engine(app.state.engine, app.state.sessionmaker)
    yield writer
    await writer.close()


def _count_transactions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    transactions = [0]
    real_store = BatchWriter._store

    async def store(self: BatchWriter, group: list[Any]) -> Any:
        transactions[0] += 1
        return await real_store(self, group)

    monkeypatch.setattr(BatchWriter, "_store", store)
    return transactions


async def test_concurrent_batches_share_transactions(
    writer: BatchWriter, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await make_org(db)
    transactions = _count_transactions(monkeypatch)
    batches = [_rows(org.id, f"a{i}", f"b{i}") for i in range(6)]

    results = await asyncio.gather(*(writer.write(rows) for rows in batches))

    assert results == [Written(accepted=2, duplicates=0)] * 6
    assert len(await _stored_ids(db, org.id)) == 12
    # The first batch writes alone; the five that queued meanwhile share one.
    assert transactions[0] == 2
    total = await db.scalar(
        select(func.sum(TelemetryHourly.event_count)).where(
            TelemetryHourly.organization_id == org.id
        )
    )
    assert total == 12


async def test_shared_event_in_group_stored_once(
    writer: BatchWriter, db: AsyncSession
) -> None:
    org = await make_org(db)

    results = await asyncio.gather(
        writer.write(_rows(org.id, "first")),
        writer.write(_rows(org.id, "shared", "x")),
        writer.write(_rows(org.id, "shared", "y")),
    )

    assert results == [Written(1, 0), Written(2, 0), Written(1, 1)]
    assert await _stored_ids(db, org.id) == ["first", "shared", "x", "y"]


async def test_failing_batch_fails_alone(writer: BatchWriter, db: AsyncSession) -> None:
    org = await make_org(db)
    orphan = _rows("no-such-organization", "lost")

    results = await asyncio.gather(
        writer.write(_rows(org.id, "warm")),
        writer.write(_rows(org.id, "kept-1")),
        writer.write(orphan),
        writer.write(_rows(org.id, "kept-2")),
        return_exceptions=True,
    )

    assert results[0] == results[1] == results[3] == Written(1, 0)
    # SQLite's driver raises its own error; SQLAlchemy wraps asyncpg's.
    assert isinstance(results[2], (IntegrityError, sqlite3.IntegrityError))
    assert await _stored_ids(db, org.id) == ["kept-1", "kept-2", "warm"]


async def test_cancelled_request_still_stores_group(
    writer: BatchWriter, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await make_org(db)
    real_store = BatchWriter._store
    entered = asyncio.Event()
    release = asyncio.Event()

    async def store(self: BatchWriter, group: list[Any]) -> Any:
        if not entered.is_set():
            entered.set()
            await release.wait()
        return await real_store(self, group)

    monkeypatch.setattr(BatchWriter, "_store", store)
    first = asyncio.create_task(writer.write(_rows(org.id, "from-cancelled")))
    await entered.wait()
    second = asyncio.create_task(writer.write(_rows(org.id, "from-next")))
    await asyncio.sleep(0)
    first.cancel()
    release.set()

    result = await asyncio.wait_for(second, timeout=10)
    await writer.close()

    assert result == Written(1, 0)
    assert first.cancelled()
    assert await _stored_ids(db, org.id) == ["from-cancelled", "from-next"]


async def test_key_of_two_organizations_counted_apart(
    writer: BatchWriter, db: AsyncSession
) -> None:
    first = await make_org(db, "First")
    second = await make_org(db, "Second")
    await writer.write(_rows(first.id, "shared"))

    results = await asyncio.gather(
        writer.write(_rows(first.id, "warm")),
        writer.write(_rows(first.id, "shared")),
        writer.write(_rows(second.id, "shared")),
    )

    assert results == [Written(1, 0), Written(0, 1), Written(1, 0)]
    total = await db.scalar(
        select(func.sum(TelemetryHourly.event_count)).where(
            TelemetryHourly.organization_id == first.id
        )
    )
    assert total == 2
