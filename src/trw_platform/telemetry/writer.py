"""Group commit: the batches of concurrent requests share one transaction.

Each telemetry request waits for its turn to write. The request that gets
the turn writes every batch queued meanwhile, in one transaction, and gives
each request its own counts once that transaction has committed. So one
commit and one round of statements serve several batches, and a request
still hears back only after its events are stored.

A batch whose group fails is written again in a transaction of its own, so
a fault in one batch fails only its own request.
"""

import asyncio
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from trw_platform.core.db import sqlite_file
from trw_platform.core.write_gate import gate_for
from trw_platform.telemetry.ingest import store_rows
from trw_platform.telemetry.sqlite_store import SqliteStore

log = structlog.get_logger(__name__)

# Rows per transaction: a group takes no more batches once it has this many.
MAX_GROUP_ROWS = 5000


@dataclass(frozen=True)
class Written:
    """The outcome of one batch: rows stored, and rows skipped as duplicates."""

    accepted: int
    duplicates: int


@dataclass
class _Batch:
    rows: list[dict[str, Any]]
    done: asyncio.Future[Written] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class BatchWriter:
    """Writes queued telemetry batches, a group per transaction."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        sqlite: SqliteStore | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._sqlite = sqlite
        self._queue: list[_Batch] = []
        self._turn = asyncio.Lock()
        self._groups: set[asyncio.Task[None]] = set()

    @classmethod
    def for_engine(
        cls, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> "BatchWriter":
        """Return a writer that stores SQLite groups through its own connection."""
        gate = gate_for(engine)
        database = sqlite_file(engine)
        if gate is None or database is None:
            return cls(sessionmaker)
        return cls(sessionmaker, sqlite=SqliteStore(database, gate))

    async def close(self) -> None:
        if self._groups:
            await asyncio.wait(self._groups)
        if self._sqlite is not None:
            await self._sqlite.close()

    async def write(self, rows: list[dict[str, Any]]) -> Written:
        """Store one batch's rows; return once they are committed."""
        batch = _Batch(rows)
        self._queue.append(batch)
        try:
            async with self._turn:
                if not batch.done.done():
                    await self._write_queued()
        except asyncio.CancelledError:
            if batch in self._queue:
                self._queue.remove(batch)
            raise
        return batch.done.result()

    async def _write_queued(self) -> None:
        # The group is written to the end even when this request is cancelled,
        # so that no batch of it is lost or written twice.
        group = asyncio.create_task(self._write_group(self._take_group()))
        self._groups.add(group)
        group.add_done_callback(self._groups.discard)
        await asyncio.shield(group)

    def _take_group(self) -> list[_Batch]:
        group: list[_Batch] = []
        size = 0
        while self._queue and (not group or size < MAX_GROUP_ROWS):
            batch = self._queue.pop(0)
            group.append(batch)
            size += len(batch.rows)
        return group

    async def _write_group(self, group: list[_Batch]) -> None:
        """Resolve each batch of the group with its counts or its error."""
        try:
            results = await self._store(group)
        except Exception as exc:
            if len(group) == 1:
                group[0].done.set_exception(exc)
                return
            log.warning("telemetry.group_failed", batches=len(group), exc_info=True)
            for batch in group:
                await self._write_group([batch])
            return
        for batch, result in zip(group, results, strict=True):
            batch.done.set_result(result)

    async def _store(self, group: list[_Batch]) -> list[Written]:
        rows = _unique_rows(group)
        if self._sqlite is not None:
            stored = await self._sqlite.store(rows)
        else:
            async with self._sessionmaker() as session:
                stored = await store_rows(session, rows)
                await session.commit()

        stored_ids = {id(row) for row in stored}
        results = []
        for batch in group:
            accepted = sum(1 for row in batch.rows if id(row) in stored_ids)
            results.append(Written(accepted, len(batch.rows) - accepted))
        return results


def _unique_rows(group: list[_Batch]) -> list[dict[str, Any]]:
    """Return the group's rows without later repeats of a dedup key.

    Two batches of one group may carry the same event. The first one stores
    it and the later one counts it as a duplicate.
    """
    seen: set[tuple[str, str]] = set()
    unique = []
    for batch in group:
        for row in batch.rows:
            key = row["dedup_key"]
            if key is not None:
                identity = (row["organization_id"], key)
                if identity in seen:
                    continue
                seen.add(identity)
            unique.append(row)
    return unique
