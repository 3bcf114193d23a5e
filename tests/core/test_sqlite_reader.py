"""Read-only work on SQLite runs in reader threads on connections of their own."""

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from trw_platform.core.db import create_engine
from trw_platform.core.sqlite_reader import SqliteReader, run_read

pytestmark = pytest.mark.anyio


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'reader.db'}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (body TEXT)"))
    yield engine
    await engine.dispose()


@pytest.fixture
async def reader(engine: AsyncEngine) -> AsyncIterator[SqliteReader]:
    reader = SqliteReader.for_engine(engine)
    assert reader is not None
    yield reader
    await reader.close()


def _bodies(session: Session) -> list[str]:
    return list(session.scalars(text("SELECT body FROM notes ORDER BY body")))


async def test_reader_sees_committed_rows(
    engine: AsyncEngine, reader: SqliteReader
) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes VALUES ('committed')"))

    assert await reader.run(_bodies) == ["committed"]


async def test_reader_runs_off_the_event_loop(reader: SqliteReader) -> None:
    loop_thread = threading.get_ident()

    reader_thread = await reader.run(lambda _session: threading.get_ident())

    assert reader_thread != loop_thread


async def test_reader_never_sees_uncommitted_rows(
    engine: AsyncEngine, reader: SqliteReader
) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO notes VALUES ('pending')"))
        seen_before_commit = await reader.run(_bodies)
        await connection.commit()

    assert seen_before_commit == []
    assert await reader.run(_bodies) == ["pending"]


async def test_closed_reader_rejects_work(engine: AsyncEngine) -> None:
    reader = SqliteReader.for_engine(engine)
    assert reader is not None

    await reader.close()
    await reader.close()

    with pytest.raises(RuntimeError, match="reader is closed"):
        await reader.run(_bodies)


async def test_no_reader_for_memory_or_postgresql() -> None:
    memory = create_engine("sqlite+aiosqlite:///:memory:")
    postgres = create_engine("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    try:
        assert SqliteReader.for_engine(memory) is None
        assert SqliteReader.for_engine(postgres) is None
    finally:
        await memory.dispose()
        await postgres.dispose()


async def test_run_read_without_reader_uses_session(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes VALUES ('in session')"))

    async with AsyncSession(bind=engine) as session:
        bodies = await run_read(None, session, _bodies)

    assert bodies == ["in session"]
