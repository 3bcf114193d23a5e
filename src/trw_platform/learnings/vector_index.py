"""In-process matrix of each organization's learning vectors.

A search multiplies the query vector with one float32 matrix per organization
instead of reading every stored vector from the database. The matrix is a
cache: before each search it is compared with the organization's ``sync_seq``
and only rows changed since the cached value are read again, so a write
through any worker process reaches every worker on its next search.

Refreshes run in reader threads, or on the event loop on PostgreSQL, and
products in worker threads. A lock guards the matrices while rows are
applied or multiplied, and never while the database is read.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits

from trw_platform.learnings.models import Learning
from trw_platform.learnings.repository import LearningFilters
from trw_platform.learnings.sequence import current_sync_seq

log = structlog.get_logger(__name__)

# NOTE: 250,000 vectors of 384 float32 values take about 370 MiB; past that
# the least recently searched organizations are dropped and reloaded on use.
MAX_CACHED_VECTORS = 250_000
INITIAL_CAPACITY = 256


@dataclass(frozen=True)
class RowChange:
    """One learning's vector and filter fields as of its sync_seq."""

    pk: int
    seq: int
    vector: np.ndarray | None
    impact: float
    status: str


@dataclass
class OrgMatrix:
    """One organization's vectors, with what masks need, in growable arrays."""

    dimension: int
    sync_seq: int = 0
    size: int = 0
    pks: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # The sync_seq of the stored version of each row's learning.
    seqs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    impacts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    statuses: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint16))
    live: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    rows: dict[int, int] = field(default_factory=dict)

    def _grow(self) -> None:
        capacity = max(INITIAL_CAPACITY, 2 * len(self.pks))
        extra = capacity - len(self.pks)
        self.pks = np.concatenate([self.pks, np.zeros(extra, np.int64)])
        self.seqs = np.concatenate([self.seqs, np.zeros(extra, np.int64)])
        self.vectors = np.vstack(
            [
                self.vectors.reshape(-1, self.dimension),
                np.zeros((extra, self.dimension), np.float32),
            ]
        )
        self.impacts = np.concatenate([self.impacts, np.zeros(extra, np.float32)])
        self.statuses = np.concatenate([self.statuses, np.zeros(extra, np.uint16)])
        self.live = np.concatenate([self.live, np.zeros(extra, bool)])

    def put(self, change: RowChange) -> None:
        """Store a learning's version unless a newer one is stored already.

        Two refreshes may read overlapping changes and apply them in either
        order, so each row keeps the sync_seq of its version.
        """
        row = self.rows.get(change.pk)
        if row is None:
            if self.size == len(self.pks):
                self._grow()
            row = self.rows[change.pk] = self.size
            self.size += 1
        elif self.seqs[row] >= change.seq:
            return
        self.pks[row] = change.pk
        self.seqs[row] = change.seq
        self.live[row] = change.vector is not None
        if change.vector is not None:
            self.vectors[row] = change.vector
        self.impacts[row] = change.impact
        self.statuses[row] = status_code(change.status)

    def mask(self, filters: LearningFilters, eligible: set[int] | None) -> np.ndarray:
        size = self.size
        keep = self.live[:size].copy()
        statuses = self.statuses[:size]
        if filters.statuses is not None:
            keep &= np.isin(statuses, [status_code(s) for s in filters.statuses])
        elif filters.exclude_statuses:
            excluded = [status_code(s) for s in filters.exclude_statuses]
            keep &= ~np.isin(statuses, excluded)
        if filters.min_impact > 0:
            keep &= self.impacts[:size] >= filters.min_impact
        if eligible is not None:
            keep &= np.isin(self.pks[:size], np.fromiter(eligible, np.int64))
        return keep


_STATUS_CODES: dict[str, int] = {}
_STATUS_LOCK = threading.Lock()


def status_code(status: str) -> int:
    """Return a small integer for a status, so masks compare integers."""
    code = _STATUS_CODES.get(status)
    if code is None:
        with _STATUS_LOCK:
            code = _STATUS_CODES.setdefault(status, len(_STATUS_CODES) + 1)
    return code


def use_one_blas_thread() -> None:
    """Run numpy's matrix products on one BLAS thread, for the whole process.

    With OpenBLAS's two threads on a 2-core machine, a product right after a
    query embedding took up to 8 ms at p95 instead of 1 ms, likely because
    the BLAS and ONNX Runtime threads competed for the cores. One thread
    multiplies a 10,000-row matrix in about 1.5 ms with no such tail.
    """
    threadpool_limits(limits=1, user_api="blas")
    log.info("learnings.blas_threads_limited", threads=1)


def decode_vector(blob: bytes, dimension: int) -> np.ndarray | None:
    vector = np.frombuffer(blob, dtype="<f4")
    return vector if vector.shape == (dimension,) else None


class VectorIndex:
    """Vectors of one embedding model, per organization, least recently used out."""

    def __init__(self, *, model_name: str, dimension: int) -> None:
        self.model_name = model_name
        self.dimension = dimension
        self._orgs: OrderedDict[str, OrgMatrix] = OrderedDict()
        self._lock = threading.Lock()

    def refresh(self, session: Session, organization_id: str) -> OrgMatrix:
        """Bring the organization's matrix up to its current sync_seq."""
        current = current_sync_seq(session, organization_id=organization_id)
        with self._lock:
            matrix = self._orgs.get(organization_id)
            if matrix is None:
                matrix = self._orgs[organization_id] = OrgMatrix(self.dimension)
            self._orgs.move_to_end(organization_id)
            since = matrix.sync_seq
        if since >= current:
            return matrix

        changes = self._read_changes(session, organization_id, since)
        with self._lock:
            for change in changes:
                matrix.put(change)
            matrix.sync_seq = max(matrix.sync_seq, current)
            self._evict()
        log.debug(
            "learnings.vectors_refreshed",
            organization_id=organization_id,
            changed=len(changes),
            size=matrix.size,
        )
        return matrix

    def _read_changes(
        self, session: Session, organization_id: str, since: int
    ) -> list[RowChange]:
        statement = select(
            Learning.pk,
            Learning.sync_seq,
            Learning.embedding,
            Learning.embedding_model,
            Learning.impact,
            Learning.status,
        ).where(
            Learning.organization_id == organization_id,
            Learning.sync_seq > since,
        )
        changes = []
        for pk, seq, blob, model, impact, status in session.execute(statement):
            vector = None
            if blob is not None and model == self.model_name:
                vector = decode_vector(blob, self.dimension)
            changes.append(RowChange(pk, seq, vector, impact, status))
        return changes

    def _evict(self) -> None:
        total = sum(matrix.size for matrix in self._orgs.values())
        while len(self._orgs) > 1 and total > MAX_CACHED_VECTORS:
            _org, evicted = self._orgs.popitem(last=False)
            total -= evicted.size

    def nearest(
        self,
        matrix: OrgMatrix,
        query_vector: np.ndarray,
        *,
        filters: LearningFilters,
        eligible: set[int] | None,
        limit: int,
        min_similarity: float,
    ) -> list[tuple[int, float, float]]:
        """Return (pk, cosine similarity, impact) of the nearest, best first.

        ``eligible`` limits the result to these pks, for filters that only
        the database can apply.
        """
        with self._lock:
            if matrix.size == 0:
                return []
            keep = matrix.mask(filters, eligible)
            return _nearest(matrix, query_vector, keep, limit, min_similarity)


def _nearest(
    matrix: OrgMatrix,
    query_vector: np.ndarray,
    keep: np.ndarray,
    limit: int,
    min_similarity: float,
) -> list[tuple[int, float, float]]:
    similarities = matrix.vectors[: matrix.size] @ query_vector
    similarities = np.where(
        keep & (similarities >= min_similarity), similarities, -np.inf
    )
    count = min(limit, int(np.count_nonzero(np.isfinite(similarities))))
    if count == 0:
        return []
    top = np.argpartition(-similarities, count - 1)[:count]
    top = top[np.argsort(-similarities[top], kind="stable")]
    pks: Any = matrix.pks[top]
    return [
        (int(pk), float(similarities[row]), float(matrix.impacts[row]))
        for pk, row in zip(pks, top, strict=True)
    ]
