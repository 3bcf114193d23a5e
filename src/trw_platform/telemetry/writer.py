"""Group commit: the batches of concurrent requests share one transaction.

Each telemetry request waits for its turn to write. Whoever gets the turn
writes every batch that has queued up meanwhile, in one transaction, and
answers each request with its own counts once that transaction has
committed. One commit and one round of statements then serve several
batches, which on SQLite more than doubled the events stored per second with
eight requests in flight. A request still hears back only after its events
are committed.

A batch whose group fails is written again in a transaction of its own, so
a fault in one batch fails only its own request.
"""

import asyncio
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trw_platform.telemetry.ingest import store_rows

log = structlog.get_logger(__name__)

# Rows per transaction; a group stops taking batches once it holds this many.
MAX_GROUP_ROWS = 5000


@dataclass(frozen=True)
class Written:
    """What became of one batch's rows: stored, or skipped as duplicates."""

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

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._queue: list[_Batch] = []
        self._turn = asyncio.Lock()

    async def write(self, rows: list[dict[str, Any]]) -> Written:
        """Store one batch's rows; return once they are committed."""
        batch = _Batch(rows)
        self._queue.append(batch)
        async with self._turn:
            if not batch.done.done():
                await self._write_queued()
        return batch.done.result()

    async def _write_queued(self) -> None:
        group = self._take_group()
        try:
            await self._write_group(group)
        finally:
            # A cancelled writer hands its unanswered batches to the next one.
            self._queue[:0] = [batch for batch in group if not batch.done.done()]

    def _take_group(self) -> list[_Batch]:
        group: list[_Batch] = []
        size = 0
        while self._queue and (not group or size < MAX_GROUP_ROWS):
            batch = self._queue.pop(0)
            group.append(batch)
            size += len(batch.rows)
        return group

    async def _write_group(self, group: list[_Batch]) -> None:
        try:
            results = await self._store(group)
        except Exception:
            if len(group) == 1:
                raise
            log.warning("telemetry.group_failed", batches=len(group), exc_info=True)
            await self._write_alone(group)
            return
        for batch, result in zip(group, results, strict=True):
            batch.done.set_result(result)

    async def _write_alone(self, group: list[_Batch]) -> None:
        for batch in group:
            try:
                (result,) = await self._store([batch])
            except Exception as exc:
                batch.done.set_exception(exc)
            else:
                batch.done.set_result(result)

    async def _store(self, group: list[_Batch]) -> list[Written]:
        async with self._sessionmaker() as session:
            stored = await store_rows(session, _unique_rows(group))
            await session.commit()

        stored_ids = {id(row) for row in stored}
        results = []
        for batch in group:
            accepted = sum(1 for row in batch.rows if id(row) in stored_ids)
            results.append(Written(accepted, len(batch.rows) - accepted))
        return results


def _unique_rows(group: list[_Batch]) -> list[dict[str, Any]]:
    """Return the group's rows without later repeats of a dedup key.

    Two batches of one group may carry the same event; the first one stores
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
