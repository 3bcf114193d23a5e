"""Group commit of telemetry batches: counts per batch, faults per batch."""

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import make_org
from trw_platform.telemetry import writer as writer_module
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


def _count_commits(app: FastAPI) -> list[int]:
    commits = [0]

    def count(_connection: Any) -> None:
        commits[0] += 1

    event.listen(app.state.engine.sync_engine, "commit", count)
    return commits


async def test_concurrent_batches_share_transactions(
    app: FastAPI, db: AsyncSession
) -> None:
    org = await make_org(db)
    writer = BatchWriter(app.state.sessionmaker)
    commits = _count_commits(app)
    batches = [_rows(org.id, f"a{i}", f"b{i}") for i in range(6)]

    results = await asyncio.gather(*(writer.write(rows) for rows in batches))

    assert results == [Written(accepted=2, duplicates=0)] * 6
    assert len(await _stored_ids(db, org.id)) == 12
    # The first batch writes alone; the five that queued meanwhile share one.
    assert commits[0] == 2
    total = await db.scalar(
        select(func.sum(TelemetryHourly.event_count)).where(
            TelemetryHourly.organization_id == org.id
        )
    )
    assert total == 12


async def test_event_in_two_batches_of_a_group_stored_once(
    app: FastAPI, db: AsyncSession
) -> None:
    org = await make_org(db)
    writer = BatchWriter(app.state.sessionmaker)

    results = await asyncio.gather(
        writer.write(_rows(org.id, "first")),
        writer.write(_rows(org.id, "shared", "x")),
        writer.write(_rows(org.id, "shared", "y")),
    )

    assert results == [Written(1, 0), Written(2, 0), Written(1, 1)]
    assert await _stored_ids(db, org.id) == ["first", "shared", "x", "y"]


async def test_failing_batch_fails_alone(app: FastAPI, db: AsyncSession) -> None:
    org = await make_org(db)
    writer = BatchWriter(app.state.sessionmaker)
    orphan = _rows("no-such-organization", "lost")

    results = await asyncio.gather(
        writer.write(_rows(org.id, "warm")),
        writer.write(_rows(org.id, "kept-1")),
        writer.write(orphan),
        writer.write(_rows(org.id, "kept-2")),
        return_exceptions=True,
    )

    assert results[0] == results[1] == results[3] == Written(1, 0)
    assert isinstance(results[2], IntegrityError)
    assert await _stored_ids(db, org.id) == ["kept-1", "kept-2", "warm"]


async def test_cancelled_writer_hands_its_group_on(
    app: FastAPI, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await make_org(db)
    writer = BatchWriter(app.state.sessionmaker)
    real_store = writer_module.store_rows
    entered = asyncio.Event()
    calls = 0

    async def store_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            entered.set()
            await asyncio.sleep(60)
        return await real_store(session, rows)

    monkeypatch.setattr(writer_module, "store_rows", store_rows)
    first = asyncio.create_task(writer.write(_rows(org.id, "from-cancelled")))
    await entered.wait()
    second = asyncio.create_task(writer.write(_rows(org.id, "from-next")))
    await asyncio.sleep(0)
    first.cancel()

    result = await asyncio.wait_for(second, timeout=10)

    assert result == Written(1, 0)
    assert await _stored_ids(db, org.id) == ["from-cancelled", "from-next"]
