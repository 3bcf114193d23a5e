"""create learnings

Revision ID: 0002_learnings
Revises: 0001_core
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_learnings"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("learnings",)
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(
    postgresql.JSONB(astext_type=sa.Text()), "postgresql"
)

# The keyword index on SQLite: rowid is learnings.pk, and the org column holds
# one token per organization so a MATCH never ranks another tenant's rows.
CREATE_FTS = """
CREATE VIRTUAL TABLE learnings_fts USING fts5(
    org, summary, detail, tags,
    tokenize = 'porter unicode61 remove_diacritics 2'
)
"""


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "learning_sequences",
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.Column("last_value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_learning_sequences_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_learning_sequences")),
    )
    _create_learnings()
    _create_learning_tags()
    # GIN on PostgreSQL; SQLite gets a plain index of a column it leaves empty.
    op.create_index(
        "ix_learnings_search_vector",
        "learnings",
        ["search_vector"],
        unique=False,
        postgresql_using="gin",
    )
    if not _is_postgresql():
        op.execute(CREATE_FTS)


def _create_learnings() -> None:
    op.create_table(
        "learnings",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.Column("source_project", sa.String(length=128), nullable=False),
        sa.Column("source_learning_id", sa.String(length=128), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("tags", JSON_TYPE, nullable=False),
        sa.Column("impact", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("metadata", JSON_TYPE, nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invalid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invalidated_by", sa.String(length=128), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sync_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_changed_by", sa.String(length=32), nullable=True),
        sa.Column("embedding_model", sa.String(length=100), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR().with_variant(sa.Text(), "sqlite"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_learnings_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_learnings")),
        sa.UniqueConstraint("id", name=op.f("uq_learnings_id")),
        sa.UniqueConstraint(
            "organization_id",
            "source_project",
            "source_learning_id",
            name=op.f("uq_learnings_organization_id_source_project_source_learning_id"),
        ),
        sa.UniqueConstraint(
            "organization_id",
            "sync_seq",
            name=op.f("uq_learnings_organization_id_sync_seq"),
        ),
    )
    with op.batch_alter_table("learnings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_learnings_org_updated",
            ["organization_id", "updated_at", "pk"],
            unique=False,
        )


def _create_learning_tags() -> None:
    op.create_table(
        "learning_tags",
        sa.Column(
            "learning_pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["learning_pk"],
            ["learnings.pk"],
            name=op.f("fk_learning_tags_learning_pk_learnings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_learning_tags_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("learning_pk", "tag", name=op.f("pk_learning_tags")),
    )
    with op.batch_alter_table("learning_tags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_learning_tags_org_tag", ["organization_id", "tag"], unique=False
        )


def downgrade() -> None:
    if not _is_postgresql():
        op.execute("DROP TABLE learnings_fts")
    op.drop_index("ix_learnings_search_vector", table_name="learnings")
    with op.batch_alter_table("learning_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_learning_tags_org_tag")

    op.drop_table("learning_tags")
    with op.batch_alter_table("learnings", schema=None) as batch_op:
        batch_op.drop_index("ix_learnings_org_updated")

    op.drop_table("learnings")
    op.drop_table("learning_sequences")
