"""The per-organization ``sync_seq`` counter that orders learning changes."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from trw_platform.core.db import dialect_insert
from trw_platform.learnings.models import LearningSequence


async def next_sync_seq(session: AsyncSession, *, organization_id: str) -> int:
    """Take the organization's next sequence value, starting at 1.

    The upsert locks the organization's counter row until the transaction
    ends, so on PostgreSQL values become visible in the order they were taken
    and a reader paging by ``sync_seq`` never skips a row that commits late.
    """
    table = LearningSequence.__table__
    insert = dialect_insert(session)(table).values(
        organization_id=organization_id, last_value=1
    )
    statement = insert.on_conflict_do_update(
        index_elements=[table.c.organization_id],
        set_={"last_value": table.c.last_value + 1},
    ).returning(table.c.last_value)
    return int((await session.execute(statement)).scalar_one())


def current_sync_seq(session: Session, *, organization_id: str) -> int:
    """Return the last value handed out, or 0 when the organization has none."""
    value = session.scalar(
        select(LearningSequence.last_value).where(
            LearningSequence.organization_id == organization_id
        )
    )
    return int(value or 0)
