"""Hybrid search: keyword and vector rankings fused, with impact weighed in."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import numpy as np
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from trw_platform.core.sqlite_reader import SqliteReader, run_read
from trw_platform.learnings import keyword, repository
from trw_platform.learnings.embeddings import Embedder, normalize, shared_embedder
from trw_platform.learnings.fusion import Ranking, fuse
from trw_platform.learnings.models import Learning
from trw_platform.learnings.repository import RETIRED_STATUSES, LearningFilters
from trw_platform.learnings.schemas import LearningSearch, SearchResultRead, as_list
from trw_platform.learnings.text import KeywordQuery, parse_query
from trw_platform.learnings.vector_index import (
    OrgMatrix,
    VectorIndex,
    use_one_blas_thread,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Each ranking contributes this many candidates to the fusion.
CANDIDATES = 100
# Cosine similarity below which a learning is not a semantic match at all.
# In spot checks, all-MiniLM-L6-v2 scored unrelated sentences at 0.0 to 0.1.
MIN_SIMILARITY = 0.2
MAX_QUERY_CHARS = 2000
ALL_RANKINGS = frozenset({"keyword", "vector"})


@dataclass
class SearchRuntime:
    """The embedder, vector cache and SQLite reader of one application.

    The embedder and index are None when embeddings are off. The reader is
    None on PostgreSQL and on in-memory SQLite, where reads go through the
    request's session.
    """

    embedder: Embedder | None
    index: VectorIndex | None
    reader: SqliteReader | None = None

    @classmethod
    def create(
        cls, *, embeddings: bool, reader: SqliteReader | None = None
    ) -> "SearchRuntime":
        if not embeddings:
            return cls(embedder=None, index=None, reader=reader)
        embedder = shared_embedder()
        use_one_blas_thread()
        index = VectorIndex(
            model_name=embedder.model_name, dimension=embedder.dimension
        )
        return cls(embedder=embedder, index=index, reader=reader)

    @property
    def writer(self) -> Embedder | None:
        """The embedder for new learnings, None when off or failed to load."""
        if self.embedder is None or not self.embedder.available:
            return None
        return self.embedder

    async def read(self, session: AsyncSession, work: Callable[[Session], T]) -> T:
        """Run read-only ``work`` in a reader thread, or in the request's session."""
        return await run_read(self.reader, session, work)


def search_filters(request: LearningSearch) -> LearningFilters:
    statuses = as_list(request.status)
    return LearningFilters(
        statuses=tuple(statuses) if statuses else None,
        exclude_statuses=RETIRED_STATUSES,
        types=tuple(as_list(request.type) or ()) or None,
        tags=tuple(request.tags) if request.tags else None,
        match_all_tags=request.tags_match == "all",
        source_project=request.source_project,
        min_impact=request.min_impact,
        created_after=request.created_after,
        created_before=request.created_before,
        updated_after=request.updated_after,
        updated_before=request.updated_before,
    )


async def _query_vector(
    runtime: SearchRuntime, text: str, client_vector: list[float] | None
) -> np.ndarray | None:
    embedder = runtime.writer
    if embedder is None:
        return None
    if client_vector is not None and embedder.accepts_client_vector(client_vector):
        return normalize(client_vector)
    if not text:
        return None
    return await embedder.encode_one(text)


@dataclass
class _Search:
    """One search request's inputs, shared by its steps."""

    organization_id: str
    filters: LearningFilters
    query: KeywordQuery
    runtime: SearchRuntime

    def prepare_vectors(
        self, session: Session
    ) -> tuple[OrgMatrix | None, set[int] | None]:
        """Refresh the vector cache and collect the pks that SQL-only filters pass."""
        index = self.runtime.index
        if index is None:
            return None, None
        matrix = index.refresh(session, self.organization_id)
        eligible = None
        if self.filters.needs_sql and matrix.size:
            eligible = repository.filtered_pks(
                session, organization_id=self.organization_id, filters=self.filters
            )
        return matrix, eligible

    def top_by_impact(self, session: Session, limit: int) -> list[SearchResultRead]:
        """Return the filtered learnings by impact, each scored by its impact."""
        rows = repository.top_by_impact(
            session,
            organization_id=self.organization_id,
            filters=self.filters,
            limit=limit,
        )
        return [to_result(row, row.impact) for row in rows]

    def keyword_hits(self, session: Session) -> list[tuple[int, float, float]]:
        return keyword.rank(
            session,
            organization_id=self.organization_id,
            query=self.query,
            filters=self.filters,
            limit=CANDIDATES,
        )

    def nearest(
        self, matrix: OrgMatrix, vector: np.ndarray, eligible: set[int] | None
    ) -> list[tuple[int, float]]:
        """Return (pk, impact) of the nearest learnings that pass the filters."""
        assert self.runtime.index is not None
        nearest = self.runtime.index.nearest(
            matrix,
            vector,
            filters=self.filters,
            eligible=eligible,
            limit=CANDIDATES,
            min_similarity=MIN_SIMILARITY,
        )
        return [(pk, impact) for pk, _similarity, impact in nearest]

    def results(
        self, session: Session, scored: list[tuple[int, float]]
    ) -> list[SearchResultRead]:
        rows = repository.load_by_pks(
            session,
            organization_id=self.organization_id,
            pks=[pk for pk, _score in scored],
            filters=self.filters,
        )
        return [to_result(rows[pk], score) for pk, score in scored if pk in rows]


async def _vector_hits(
    job: _Search,
    embedding: "asyncio.Future[np.ndarray | None]",
    matrix: OrgMatrix | None,
    eligible: set[int] | None,
) -> list[tuple[int, float]]:
    vector = await embedding
    if vector is None or matrix is None:
        return []
    return await asyncio.to_thread(job.nearest, matrix, vector, eligible)


async def _rank(
    session: AsyncSession,
    job: _Search,
    request: LearningSearch,
    rankings: frozenset[str],
) -> tuple[list[tuple[int, float, float]], list[tuple[int, float]]]:
    """Return keyword (pk, relevance, impact) and vector (pk, impact) hits.

    The query is embedded in a worker thread while the vector cache is
    checked. Then the keyword query runs in the database while the vector
    product runs in another thread.
    """
    text = (request.query or "")[:MAX_QUERY_CHARS].strip()
    use_vectors = "vector" in rankings and job.runtime.writer is not None
    async with asyncio.TaskGroup() as tasks:
        vector_hits = None
        if use_vectors:
            embedding = tasks.create_task(
                _query_vector(job.runtime, text, request.embedding)
            )
            matrix, eligible = await job.runtime.read(session, job.prepare_vectors)
            vector_hits = tasks.create_task(
                _vector_hits(job, embedding, matrix, eligible)
            )
        keyword_hits: list[tuple[int, float, float]] = []
        if "keyword" in rankings and job.query:
            keyword_hits = await job.runtime.read(session, job.keyword_hits)
    return keyword_hits, vector_hits.result() if vector_hits is not None else []


async def search(
    session: AsyncSession,
    *,
    organization_id: str,
    request: LearningSearch,
    runtime: SearchRuntime,
    rankings: frozenset[str] = ALL_RANKINGS,
) -> list[SearchResultRead]:
    """Rank the organization's learnings for a query, best first.

    ``rankings`` picks "keyword", "vector" or both, for benchmarks. With no
    query text and no query vector, the filtered learnings come back by
    impact, and each score is the impact.
    """
    filters = search_filters(request)
    text = (request.query or "")[:MAX_QUERY_CHARS]
    job = _Search(organization_id, filters, parse_query(text), runtime)
    if not job.query and request.embedding is None:
        return await runtime.read(
            session, partial(job.top_by_impact, limit=request.limit)
        )

    keyword_hits, vector_hits = await _rank(session, job, request, rankings)
    # Both rankings already applied the filters and carry each impact.
    impacts = {pk: impact for pk, impact in vector_hits}
    impacts.update((pk, impact) for pk, _relevance, impact in keyword_hits)
    keyword_ranking = Ranking(
        [pk for pk, _relevance, _impact in keyword_hits],
        relevances=[relevance for _pk, relevance, _impact in keyword_hits],
    )
    vector_ranking = Ranking([pk for pk, _impact in vector_hits])
    fused = fuse([keyword_ranking, vector_ranking], impacts)[: request.limit]
    if not fused:
        return []
    return await runtime.read(session, partial(job.results, scored=fused))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def to_result(learning: Learning, score: float) -> SearchResultRead:
    """Shape a learning the way trw-memory and trw-mcp read search results."""
    values: dict[str, Any] = {
        "id": learning.id,
        "source_learning_id": learning.source_learning_id,
        "source_project": learning.source_project,
        "summary": learning.summary,
        "detail": learning.detail,
        "tags": list(learning.tags),
        "impact": learning.impact,
        "status": learning.status,
        "type": learning.type,
        "score": round(score, 6),
        "created_at": learning.created_at.isoformat(),
        "updated_at": learning.updated_at.isoformat(),
        "metadata": {key: str(value) for key, value in learning.meta.items()},
        "valid_from": _iso(learning.valid_from),
        "invalid_from": _iso(learning.invalid_from),
        "invalidated_by": learning.invalidated_by,
    }
    return SearchResultRead(**values)
