"""Read-only work on SQLite, one thread call per unit of work.

Through SQLAlchemy's aiosqlite adapter a statement costs four round trips
between the event loop and the driver's thread (cursor, execute, fetch and
close). On the 2-core development machine each round trip took 0.2 to 0.4 ms,
so loading ten learnings by primary key took about 2.7 ms for 0.1 ms of SQL.
A reader runs a whole function of synchronous SQLAlchemy calls in one of its
threads instead, on a synchronous engine of its own over the same file.

Readers run only reads: every write stays in the request's own session and
takes the engine's write turns. In WAL mode a read sees the last committed
state, and readers and the writer do not block each other (SQLite's
documentation of write-ahead logging).
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import structlog
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from trw_platform.core.db import json_dumps, on_sqlite_connect, sqlite_file

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Threads, each with its own connection: reads of several requests overlap
# while SQLite works outside the GIL.
READ_THREADS = 4


class SqliteReader:
    """Runs read-only functions on SQLite in a small pool of threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._executor = ThreadPoolExecutor(
            READ_THREADS, thread_name_prefix="sqlite-read"
        )
        self._closed = False

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> "SqliteReader | None":
        """Return a reader on the async engine's SQLite file, or None.

        None for PostgreSQL, where asyncpg needs one round trip a statement,
        and for an in-memory SQLite database, which a second connection
        cannot open.
        """
        database = sqlite_file(engine)
        if database is None:
            return None

        sync_engine = create_engine(
            engine.url.set(drivername="sqlite"),
            connect_args={"timeout": 30, "check_same_thread": False},
            json_serializer=json_dumps,
            pool_size=READ_THREADS,
            max_overflow=0,
        )
        event.listen(sync_engine, "connect", on_sqlite_connect)
        log.info("database.reader_started", path=database, threads=READ_THREADS)
        return cls(sync_engine)

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` with a session of its own in a reader thread."""
        if self._closed:
            raise RuntimeError(
                "The SQLite reader is closed: the application has stopped."
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, work)

    def _run(self, work: Callable[[Session], T]) -> T:
        with Session(self._engine) as session:
            return work(session)

    async def close(self) -> None:
        """Stop the threads and close the connections. Later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        self._engine.dispose()
        log.info("database.reader_stopped")


async def run_read(
    reader: SqliteReader | None, session: AsyncSession, work: Callable[[Session], T]
) -> T:
    """Run read-only ``work`` in a reader thread, or else in ``session``."""
    if reader is not None:
        return await reader.run(work)
    return await session.run_sync(work)
