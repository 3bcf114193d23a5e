"""Hybrid search: keyword and vector rankings fused, with impact weighed in."""

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.learnings import keyword, repository
from trw_platform.learnings.embeddings import Embedder, normalize, shared_embedder
from trw_platform.learnings.fusion import Ranking, fuse
from trw_platform.learnings.models import Learning
from trw_platform.learnings.repository import RETIRED_STATUSES, LearningFilters
from trw_platform.learnings.schemas import LearningSearch, SearchResultRead, as_list
from trw_platform.learnings.text import parse_query
from trw_platform.learnings.vector_index import VectorIndex, use_one_blas_thread

log = structlog.get_logger(__name__)

# Each ranking contributes this many candidates to the fusion.
CANDIDATES = 100
# Cosine similarity below which a learning is not a semantic match at all.
# In spot checks, all-MiniLM-L6-v2 scored unrelated sentences at 0.0 to 0.1.
MIN_SIMILARITY = 0.2
MAX_QUERY_CHARS = 2000
ALL_RANKINGS = frozenset({"keyword", "vector"})


@dataclass
class SearchRuntime:
    """The embedder and vector cache of one application, if embeddings are on."""

    embedder: Embedder | None
    index: VectorIndex | None

    @classmethod
    def create(cls, *, embeddings: bool) -> "SearchRuntime":
        if not embeddings:
            return cls(embedder=None, index=None)
        embedder = shared_embedder()
        use_one_blas_thread()
        index = VectorIndex(
            model_name=embedder.model_name, dimension=embedder.dimension
        )
        return cls(embedder=embedder, index=index)

    @property
    def writer(self) -> Embedder | None:
        """The embedder for new learnings, None when off or failed to load."""
        if self.embedder is None or not self.embedder.available:
            return None
        return self.embedder


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


async def _vector_ranking(
    session: AsyncSession,
    runtime: SearchRuntime,
    organization_id: str,
    vector: np.ndarray | None,
    filters: LearningFilters,
) -> list[tuple[int, float]]:
    """Return (pk, impact) of the nearest learnings that pass the filters."""
    if vector is None or runtime.index is None:
        return []
    nearest = await runtime.index.search(
        session,
        organization_id=organization_id,
        query_vector=vector,
        filters=filters,
        limit=CANDIDATES,
        min_similarity=MIN_SIMILARITY,
    )
    return [(pk, impact) for pk, _similarity, impact in nearest]


async def _rank(
    session: AsyncSession,
    runtime: SearchRuntime,
    organization_id: str,
    request: LearningSearch,
    filters: LearningFilters,
    rankings: frozenset[str],
) -> tuple[list[tuple[int, float, float]], list[tuple[int, float]]]:
    """Return keyword (pk, relevance, impact) and vector (pk, impact) hits."""
    text = (request.query or "")[:MAX_QUERY_CHARS]
    # The query is embedded in a worker thread while the keyword query runs.
    embedding = None
    if "vector" in rankings:
        embedding = asyncio.ensure_future(
            _query_vector(runtime, text.strip(), request.embedding)
        )
    try:
        keyword_hits: list[tuple[int, float, float]] = []
        if "keyword" in rankings:
            keyword_hits = await keyword.rank(
                session,
                organization_id=organization_id,
                query=parse_query(text),
                filters=filters,
                limit=CANDIDATES,
            )
        vector = await embedding if embedding is not None else None
    finally:
        if embedding is not None and not embedding.done():
            embedding.cancel()
    vector_hits = await _vector_ranking(
        session, runtime, organization_id, vector, filters
    )
    return keyword_hits, vector_hits


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
    keyword_query = parse_query(text)
    if not keyword_query and request.embedding is None:
        rows = await repository.top_by_impact(
            session,
            organization_id=organization_id,
            filters=filters,
            limit=request.limit,
        )
        return [to_result(row, row.impact) for row in rows]

    keyword_hits, vector_hits = await _rank(
        session, runtime, organization_id, request, filters, rankings
    )
    # Both rankings already applied the filters and carry each impact.
    impacts = {pk: impact for pk, impact in vector_hits}
    impacts.update((pk, impact) for pk, _relevance, impact in keyword_hits)
    keyword_ranking = Ranking(
        [pk for pk, _relevance, _impact in keyword_hits],
        relevances=[relevance for _pk, relevance, _impact in keyword_hits],
    )
    vector_ranking = Ranking([pk for pk, _impact in vector_hits])
    fused = fuse([keyword_ranking, vector_ranking], impacts)
    return await _hydrate(session, organization_id, fused[: request.limit], filters)


async def _hydrate(
    session: AsyncSession,
    organization_id: str,
    scored: list[tuple[int, float]],
    filters: LearningFilters,
) -> list[SearchResultRead]:
    rows = await repository.load_by_pks(
        session,
        organization_id=organization_id,
        pks=[pk for pk, _score in scored],
        filters=filters,
    )
    return [to_result(rows[pk], score) for pk, score in scored if pk in rows]


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
