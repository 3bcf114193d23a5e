from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from trw_platform.core.db import Base, JSONType, UTCDateTime, new_id, utc_now

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# PostgreSQL keeps the keyword index in this column; SQLite keeps it in the
# learnings_fts virtual table, which the migration creates, and leaves it empty.
SearchVector = TSVECTOR().with_variant(Text(), "sqlite")
# The FTS5 table and the shadow tables SQLite creates for it have no model.
UNMAPPED_TABLE_PREFIX = "learnings_fts"


def is_unmapped_table(name: str | None) -> bool:
    """Return whether a reflected table is SQLite's keyword index, not a model."""
    return name is not None and name.startswith(UNMAPPED_TABLE_PREFIX)


class Learning(Base):
    __tablename__ = "learnings"
    __table_args__ = (
        UniqueConstraint("organization_id", "source_project", "source_learning_id"),
        UniqueConstraint("organization_id", "sync_seq"),
        Index("ix_learnings_org_updated", "organization_id", "updated_at", "pk"),
        # GIN on PostgreSQL; on SQLite a plain index of a column left empty.
        Index("ix_learnings_search_vector", "search_vector", postgresql_using="gin"),
    )

    # NOTE: the integer key is the rowid of the SQLite keyword index; the
    # public identifier is the hex ``id``.
    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    source_project: Mapped[str] = mapped_column(String(128))
    source_learning_id: Mapped[str] = mapped_column(String(128))
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSONType)
    impact: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(32))
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSONType)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    invalid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    invalidated_by: Mapped[str | None] = mapped_column(String(128))
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    sync_seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_changed_by: Mapped[str | None] = mapped_column(String(32))
    embedding_model: Mapped[str | None] = mapped_column(String(100))
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    search_vector: Mapped[Any | None] = mapped_column(
        SearchVector, nullable=True, deferred=True
    )


class LearningTag(Base):
    """One lower-cased tag of a learning, for tag filters on both databases."""

    __tablename__ = "learning_tags"
    __table_args__ = (Index("ix_learning_tags_org_tag", "organization_id", "tag"),)

    learning_pk: Mapped[int] = mapped_column(
        ForeignKey("learnings.pk", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )


class LearningSequence(Base):
    """The last ``sync_seq`` handed out in an organization."""

    __tablename__ = "learning_sequences"

    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    last_value: Mapped[int] = mapped_column(BigInteger)
