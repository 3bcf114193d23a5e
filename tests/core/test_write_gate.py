"""SQLite writers in one process take turns instead of sleeping in busy waits."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from trw_platform.core import write_gate
from trw_platform.core.db import create_engine

pytestmark = pytest.mark.anyio


def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.close()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine whose connections fail at once on a taken SQLite write lock.

    Without the turns, a second writer would fail with "database is locked".
    """
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    event.listen(engine.sync_engine, "connect", _no_busy_wait)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (body TEXT)"))
    yield engine
    await engine.dispose()


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT count(*) FROM notes")) or 0)


async def test_second_writer_waits_for_first_commit(engine: AsyncEngine) -> None:
    order: list[str] = []
    first_wrote = asyncio.Event()

    async def first() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes VALUES ('first')"))
            first_wrote.set()
            await asyncio.sleep(0.2)
            order.append("first committed")

    async def second() -> None:
        await first_wrote.wait()
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes VALUES ('second')"))
            order.append("second wrote")

    await asyncio.gather(first(), second())

    assert order == ["first committed", "second wrote"]
    assert await _count(engine) == 2


async def test_readers_do_not_wait_for_a_writer(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes VALUES ('held')"))

        # The writer keeps the turn until it returns to the pool, and a read
        # on another connection goes through meanwhile.
        count = await asyncio.wait_for(_count(engine), timeout=5)

    assert count == 0
    assert await _count(engine) == 1


async def test_turn_comes_back_after_a_rollback(engine: AsyncEngine) -> None:
    connection = await engine.connect()
    await connection.execute(text("INSERT INTO notes VALUES ('dropped')"))
    await connection.rollback()
    await connection.close()

    async with engine.begin() as connection:
        await asyncio.wait_for(
            connection.execute(text("INSERT INTO notes VALUES ('kept')")), timeout=5
        )

    assert await _count(engine) == 1


async def test_writer_goes_ahead_after_turn_timeout(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(write_gate, "TURN_TIMEOUT_S", 0.1)
    holder = await engine.connect()
    await holder.execute(text("INSERT INTO notes VALUES ('holder')"))
    await holder.commit()
    # The first connection keeps the turn, because it is not back in the pool.

    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes VALUES ('late')"))

    await holder.close()
    assert await _count(engine) == 2


@pytest.mark.parametrize(
    ("statement", "reads"),
    [
        ("SELECT 1", True),
        ("  select * from notes", True),
        ("PRAGMA journal_mode", True),
        ("INSERT INTO notes VALUES (1)", False),
        ("UPDATE notes SET body = 'x'", False),
        ("WITH t AS (SELECT 1) DELETE FROM notes", False),
    ],
)
def test_is_read_judges_by_first_word(statement: str, reads: bool) -> None:
    assert write_gate.is_read(statement) is reads
