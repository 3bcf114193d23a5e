"""Publishing, reading and retiring learnings."""

import hashlib
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import orjson
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.core.db import utc_now
from trw_platform.learnings import keyword, repository
from trw_platform.learnings.embeddings import Embedder, document_text, vector_bytes
from trw_platform.learnings.errors import LearningNotFound
from trw_platform.learnings.models import Learning
from trw_platform.learnings.repository import LearningFilters
from trw_platform.learnings.schemas import UNKNOWN_PROJECT, LearningCreate
from trw_platform.learnings.sequence import next_sync_seq

log = structlog.get_logger(__name__)

# Fields that make up a learning's content; a publish that changes none of
# them is a replay and leaves the stored learning as it is.
CONTENT_FIELDS = (
    "summary",
    "detail",
    "tags",
    "impact",
    "status",
    "type",
    "meta",
    "valid_from",
    "invalid_from",
    "invalidated_by",
)
_DEFAULTS: dict[str, Any] = {
    "detail": "",
    "tags": [],
    "impact": 0.5,
    "status": "active",
    "type": "pattern",
    "meta": {},
    "valid_from": None,
    "invalid_from": None,
    "invalidated_by": None,
}


@dataclass(frozen=True)
class PublishResult:
    learning: Learning
    created: bool
    changed: bool


def derived_source_id(data: LearningCreate) -> str:
    """Return ``auto-`` and 24 hex digits of the SHA-256 of summary and detail."""
    encoded = orjson.dumps([data.summary, data.detail or ""])
    return "auto-" + hashlib.sha256(encoded).hexdigest()[:24]


def content_hash(values: dict[str, Any]) -> str:
    """Return the SHA-256 of the content fields as canonical JSON."""
    canonical = {name: values[name] for name in CONTENT_FIELDS}
    encoded = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()


def _content_values(data: LearningCreate, base: dict[str, Any]) -> dict[str, Any]:
    """Overlay the fields the client sent on ``base``; absent fields keep it."""
    sent = data.model_fields_set
    values = dict(base)
    for name in CONTENT_FIELDS:
        field_name = "metadata" if name == "meta" else name
        if field_name in sent or name not in values:
            values[name] = getattr(data, field_name)
    values["detail"] = values["detail"] or ""
    values["impact"] = float(values["impact"])
    for name in ("valid_from", "invalid_from"):
        if values[name] is not None:
            values[name] = values[name].astimezone(UTC)
    return values


def _stored_values(learning: Learning) -> dict[str, Any]:
    return {name: getattr(learning, name) for name in CONTENT_FIELDS}


async def _embed(
    embedder: Embedder | None, values: dict[str, Any]
) -> tuple[str | None, bytes | None]:
    if embedder is None:
        return None, None
    vector = await embedder.encode_one(
        document_text(values["summary"], values["detail"])
    )
    if vector is None:
        return None, None
    return embedder.model_name, vector_bytes(vector)


async def publish(
    session: AsyncSession,
    *,
    organization_id: str,
    key_id: str,
    data: LearningCreate,
    embedder: Embedder | None,
) -> PublishResult:
    """Insert or update the learning with this source project and source id.

    A missing ``source_project`` counts as "unknown". A missing or empty
    ``source_learning_id`` is derived from the summary and detail, so a
    replay of the same publish finds the learning it stored. A replay with
    unchanged content changes nothing, not even ``sync_seq``.
    """
    source_project = data.source_project or UNKNOWN_PROJECT
    source_learning_id = data.source_learning_id or derived_source_id(data)
    lookup = {
        "organization_id": organization_id,
        "source_project": source_project,
        "source_learning_id": source_learning_id,
    }
    existing = await repository.get_by_source(session, **lookup)
    if existing is None:
        try:
            async with session.begin_nested():
                learning = await _insert(session, lookup, data, embedder)
            return PublishResult(learning, created=True, changed=True)
        except IntegrityError:
            # A concurrent publish of the same learning inserted it first.
            existing = await repository.get_by_source(session, **lookup)
            if existing is None:
                raise
    return await _update(session, existing, data, key_id, embedder)


async def _insert(
    session: AsyncSession,
    lookup: dict[str, str],
    data: LearningCreate,
    embedder: Embedder | None,
) -> Learning:
    values = _content_values(data, _DEFAULTS)
    model, vector = await _embed(embedder, values)
    now = utc_now()
    learning = Learning(
        **lookup,
        **values,
        content_hash=content_hash(values),
        version=1,
        sync_seq=await next_sync_seq(
            session, organization_id=lookup["organization_id"]
        ),
        created_at=now,
        updated_at=now,
        embedding_model=model,
        embedding=vector,
    )
    session.add(learning)
    await session.flush()
    await repository.replace_tags(session, learning)
    await keyword.index_learning(session, learning)
    log.debug(
        "learning.created",
        learning_id=learning.id,
        organization_id=learning.organization_id,
        sync_seq=learning.sync_seq,
    )
    return learning


async def _update(
    session: AsyncSession,
    learning: Learning,
    data: LearningCreate,
    key_id: str,
    embedder: Embedder | None,
) -> PublishResult:
    stored = _stored_values(learning)
    values = _content_values(data, stored)
    new_hash = content_hash(values)
    if new_hash == learning.content_hash:
        return PublishResult(learning, created=False, changed=False)

    text_changed = (values["summary"], values["detail"]) != (
        stored["summary"],
        stored["detail"],
    )
    if text_changed or learning.embedding_model is None:
        learning.embedding_model, learning.embedding = await _embed(embedder, values)
    if values["status"] != stored["status"]:
        _record_status_change(learning, key_id)
    for name, value in values.items():
        setattr(learning, name, value)
    learning.content_hash = new_hash
    await _bump(session, learning)

    if values["tags"] != stored["tags"]:
        await repository.replace_tags(session, learning)
    await keyword.index_learning(session, learning)
    log.debug(
        "learning.updated",
        learning_id=learning.id,
        organization_id=learning.organization_id,
        sync_seq=learning.sync_seq,
    )
    return PublishResult(learning, created=False, changed=True)


def _record_status_change(learning: Learning, key_id: str) -> None:
    learning.status_changed_at = utc_now()
    learning.status_changed_by = key_id


async def _bump(session: AsyncSession, learning: Learning) -> None:
    # The database adds 1 to the version it has, so concurrent updates that
    # read the same row still count one version each.
    learning.version = Learning.version + 1
    learning.updated_at = utc_now()
    learning.sync_seq = await next_sync_seq(
        session, organization_id=learning.organization_id
    )
    await session.flush()
    await session.refresh(learning, ["version"])


async def get_learning(
    session: AsyncSession, *, organization_id: str, learning_id: str
) -> Learning:
    """Return the organization's learning; raises LearningNotFound."""
    learning = await repository.get_by_id(
        session, organization_id=organization_id, learning_id=learning_id
    )
    if learning is None:
        raise LearningNotFound()
    return learning


async def list_learnings(
    session: AsyncSession,
    *,
    organization_id: str,
    filters: LearningFilters,
    page: int,
    page_size: int,
) -> tuple[list[Learning], int]:
    return await repository.list_page(
        session,
        organization_id=organization_id,
        filters=filters,
        page=page,
        page_size=page_size,
    )


async def set_status(
    session: AsyncSession,
    *,
    organization_id: str,
    learning_id: str,
    status: str,
    key_id: str,
) -> Learning:
    """Set the status; setting the current status again changes nothing.

    Raises LearningNotFound for an unknown id or another organization's id.
    """
    learning = await get_learning(
        session, organization_id=organization_id, learning_id=learning_id
    )
    if learning.status == status:
        return learning

    previous = learning.status
    learning.status = status
    learning.content_hash = content_hash(_stored_values(learning))
    _record_status_change(learning, key_id)
    await _bump(session, learning)
    log.info(
        "learning.status_changed",
        learning_id=learning.id,
        organization_id=organization_id,
        key_id=key_id,
        previous=previous,
        status=status,
    )
    return learning
