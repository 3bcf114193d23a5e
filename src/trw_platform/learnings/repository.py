"""Queries on learnings and the filter clauses that list and search share."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from trw_platform.learnings.models import Learning, LearningTag

# Search leaves these out unless its status filter names them.
RETIRED_STATUSES = ("obsolete", "obsolete_poisoned")


@dataclass(frozen=True)
class LearningFilters:
    statuses: tuple[str, ...] | None = None
    exclude_statuses: tuple[str, ...] = ()
    types: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    match_all_tags: bool = False
    source_project: str | None = None
    min_impact: float = 0.0
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    text: str | None = None

    @property
    def needs_sql(self) -> bool:
        """Whether a filter goes beyond status and impact."""
        return any(
            value is not None
            for value in (
                self.types,
                self.tags,
                self.source_project,
                self.created_after,
                self.created_before,
                self.updated_after,
                self.updated_before,
                self.text,
            )
        )


def _escape_like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _tag_clause(tags: tuple[str, ...], match_all: bool) -> ColumnElement[bool]:
    lowered = sorted({tag.lower() for tag in tags})
    matching = select(func.count(LearningTag.tag)).where(
        LearningTag.learning_pk == Learning.pk, LearningTag.tag.in_(lowered)
    )
    if match_all:
        return matching.scalar_subquery() == len(lowered)
    return exists(matching.with_only_columns(LearningTag.tag))


def _range_clauses(filters: LearningFilters) -> list[ColumnElement[bool]]:
    bounds = [
        (Learning.created_at, filters.created_after, filters.created_before),
        (Learning.updated_at, filters.updated_after, filters.updated_before),
    ]
    clauses = []
    for column, after, before in bounds:
        if after is not None:
            clauses.append(column >= after)
        if before is not None:
            clauses.append(column <= before)
    return clauses


def filter_clauses(
    organization_id: str, filters: LearningFilters
) -> list[ColumnElement[bool]]:
    """Return WHERE clauses for one organization's learnings under filters."""
    clauses: list[ColumnElement[bool]] = [Learning.organization_id == organization_id]
    if filters.statuses is not None:
        clauses.append(Learning.status.in_(filters.statuses))
    elif filters.exclude_statuses:
        clauses.append(Learning.status.not_in(filters.exclude_statuses))
    if filters.types is not None:
        clauses.append(Learning.type.in_(filters.types))
    if filters.tags:
        clauses.append(_tag_clause(filters.tags, filters.match_all_tags))
    if filters.source_project is not None:
        clauses.append(Learning.source_project == filters.source_project)
    if filters.min_impact > 0:
        clauses.append(Learning.impact >= filters.min_impact)
    if filters.text:
        pattern = _escape_like(filters.text)
        clauses.append(
            or_(
                func.lower(Learning.summary).like(pattern, escape="\\"),
                func.lower(Learning.detail).like(pattern, escape="\\"),
            )
        )
    return clauses + _range_clauses(filters)


async def get_by_id(
    session: AsyncSession, *, organization_id: str, learning_id: str
) -> Learning | None:
    return await session.scalar(
        select(Learning).where(
            Learning.organization_id == organization_id, Learning.id == learning_id
        )
    )


async def get_by_source(
    session: AsyncSession,
    *,
    organization_id: str,
    source_project: str,
    source_learning_id: str,
) -> Learning | None:
    return await session.scalar(
        select(Learning).where(
            Learning.organization_id == organization_id,
            Learning.source_project == source_project,
            Learning.source_learning_id == source_learning_id,
        )
    )


async def list_page(
    session: AsyncSession,
    *,
    organization_id: str,
    filters: LearningFilters,
    page: int,
    page_size: int,
) -> tuple[list[Learning], int]:
    """Return one page, most recently updated first, and the filtered total."""
    clauses = filter_clauses(organization_id, filters)
    total = await session.scalar(select(func.count()).where(*clauses))
    rows = await session.scalars(
        select(Learning)
        .where(*clauses)
        .order_by(Learning.updated_at.desc(), Learning.pk.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows), int(total or 0)


def load_by_pks(
    session: Session,
    *,
    organization_id: str,
    pks: Iterable[int],
    filters: LearningFilters,
) -> dict[int, Learning]:
    """Load the learnings among ``pks`` that pass the filters, keyed by pk."""
    pk_list = list(pks)
    if not pk_list:
        return {}
    organization, *others = filter_clauses(organization_id, filters)
    if session.get_bind().dialect.name == "sqlite":
        # Without statistics SQLite's planner rates the organization index
        # as selective as the primary keys, and so read all of an organization's
        # rows through it: 1.1 ms instead of 0.1 ms at 10,000 learnings.
        # likely() marks the organization term as true for most rows.
        organization = func.likely(organization)
    rows = session.scalars(
        select(Learning).where(Learning.pk.in_(pk_list), organization, *others)
    )
    return {row.pk: row for row in rows}


def filtered_pks(
    session: Session, *, organization_id: str, filters: LearningFilters
) -> set[int]:
    rows = session.scalars(
        select(Learning.pk).where(*filter_clauses(organization_id, filters))
    )
    return set(rows)


def top_by_impact(
    session: Session,
    *,
    organization_id: str,
    filters: LearningFilters,
    limit: int,
) -> list[Learning]:
    """Return the highest-impact learnings, newest first among equals."""
    rows = session.scalars(
        select(Learning)
        .where(*filter_clauses(organization_id, filters))
        .order_by(Learning.impact.desc(), Learning.updated_at.desc())
        .limit(limit)
    )
    return list(rows)


async def replace_tags(session: AsyncSession, learning: Learning) -> None:
    await session.execute(
        delete(LearningTag).where(LearningTag.learning_pk == learning.pk)
    )
    tags = sorted({tag.lower()[:100] for tag in learning.tags})
    if tags:
        rows: list[dict[str, Any]] = [
            {
                "learning_pk": learning.pk,
                "tag": tag,
                "organization_id": learning.organization_id,
            }
            for tag in tags
        ]
        await session.execute(insert(LearningTag), rows)
