"""Embed stored learnings again: those saved while embeddings were off.

A learning stored without a vector, or with a vector of another model, is
found by keyword search only. ``reembed`` gives it the current model's vector
and a new ``sync_seq``, so every server's vector cache picks it up on its
next search. Its content, version and ``updated_at`` stay as they were.
"""

from collections.abc import Callable

import structlog
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.learnings.embeddings import Embedder, document_text, vector_bytes
from trw_platform.learnings.models import Learning
from trw_platform.learnings.sequence import next_sync_seq

log = structlog.get_logger(__name__)

BATCH_SIZE = 64


class EmbedderUnavailable(Exception):
    """The embedding model could not be loaded."""


async def reembed(
    session: AsyncSession,
    *,
    embedder: Embedder,
    organization_id: str | None = None,
    every_learning: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Embed the learnings that lack the model's vector; return how many.

    ``every_learning`` embeds those that have one as well. Commits after each
    batch of ``BATCH_SIZE``, so an interrupted run keeps what it did.
    """
    done = 0
    last_pk = 0
    while True:
        batch = await _next_batch(
            session, embedder, organization_id, every_learning, last_pk
        )
        if not batch:
            break

        await _embed_batch(session, embedder, batch)
        await session.commit()
        done += len(batch)
        last_pk = batch[-1].pk
        if progress is not None:
            progress(done)

    log.info("learnings.reembedded", count=done, organization_id=organization_id)
    return done


async def _next_batch(
    session: AsyncSession,
    embedder: Embedder,
    organization_id: str | None,
    every_learning: bool,
    after_pk: int,
) -> list[Learning]:
    query = select(Learning).where(Learning.pk > after_pk)
    if organization_id is not None:
        query = query.where(Learning.organization_id == organization_id)
    if not every_learning:
        query = query.where(
            or_(
                Learning.embedding_model.is_(None),
                Learning.embedding_model != embedder.model_name,
            )
        )
    result = await session.scalars(query.order_by(Learning.pk).limit(BATCH_SIZE))
    return list(result)


async def _embed_batch(
    session: AsyncSession, embedder: Embedder, batch: list[Learning]
) -> None:
    texts = [document_text(learning.summary, learning.detail) for learning in batch]
    vectors = await embedder.encode_async(texts)
    if vectors is None:
        raise EmbedderUnavailable(
            "The embedding model failed to load; the log lines above show the error."
        )

    for learning, vector in zip(batch, vectors, strict=True):
        learning.embedding_model = embedder.model_name
        learning.embedding = vector_bytes(vector)
        learning.sync_seq = await next_sync_seq(
            session, organization_id=learning.organization_id
        )
    await session.flush()
