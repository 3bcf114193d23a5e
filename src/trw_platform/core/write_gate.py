"""Writers to one SQLite database take turns within a process.

SQLite lets one connection write at a time. A connection that finds the
write lock taken waits in SQLite's busy handler, which sleeps 1, 2, 5, 10 and
then up to 100 ms between tries (sqliteDefaultBusyCallback in SQLite's
main.c). With eight telemetry batches in flight, one INSERT in a hundred
waited more than a second there.

So a connection takes a turn on an asyncio lock before its first write. It
gives the turn back when it returns to the pool, after its commit or
rollback, and the next writer starts at once. Reads take no turn.

No connection holds SQLite's write lock while it waits for a turn, because
the turn comes before the first write, so connections cannot deadlock over
the two locks. A task that writes through two connections at once would
wait on itself: after TURN_TIMEOUT_S its second writer goes ahead without a
turn.

NOTE: the turn is per process. Several workers on one SQLite file still meet
in the busy handler; PostgreSQL is the backend for more than one worker.
"""

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger(__name__)

# Statements that start with these words only read.
READ_PREFIXES = ("SELECT", "PRAGMA", "EXPLAIN")
# The busy timeout of the SQLite connections. A writer that waits this long
# for a turn goes ahead without one, and SQLite's busy handler takes over.
TURN_TIMEOUT_S = 30.0
_HOLDS_TURN = "trw_write_turn"
_GATES: "weakref.WeakKeyDictionary[Any, WriteGate]" = weakref.WeakKeyDictionary()


class WriteGate:
    """Turns to write, which the connections of one engine take before writing."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    def install(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._before_execute)
        event.listen(engine.sync_engine, "checkin", self._on_checkin)
        _GATES[engine.sync_engine] = self

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold a turn for writes made outside the engine, on the same database."""
        acquired = await self._acquire()
        try:
            yield
        finally:
            if acquired:
                self._lock.release()

    def _before_execute(
        self,
        connection: Any,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if connection.info.get(_HOLDS_TURN) or is_read(statement):
            return
        driver_connection = connection.connection.dbapi_connection
        if driver_connection.run_async(lambda _raw: self._acquire()):
            connection.info[_HOLDS_TURN] = True

    async def _acquire(self) -> bool:
        try:
            async with asyncio.timeout(TURN_TIMEOUT_S):
                await self._lock.acquire()
        except TimeoutError:
            log.warning("database.write_turn_timed_out", waited_s=TURN_TIMEOUT_S)
            return False
        return True

    def _on_checkin(self, _dbapi_connection: Any, connection_record: Any) -> None:
        if connection_record.info.pop(_HOLDS_TURN, False):
            self._lock.release()


def gate_for(engine: AsyncEngine) -> WriteGate | None:
    """Return the engine's gate, or None when it has none (not SQLite)."""
    return _GATES.get(engine.sync_engine)


def is_read(statement: str) -> bool:
    """Return whether a statement only reads, from its first word."""
    return statement.lstrip()[:7].upper().startswith(READ_PREFIXES)
