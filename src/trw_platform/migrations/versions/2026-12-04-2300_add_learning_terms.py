"""add the SQLite keyword vocabulary

Revision ID: 0004_learning_terms
Revises: 0002_learnings
Create Date: 2026-12-04 23:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_learning_terms"
down_revision: str | None = "0002_learnings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One row per indexed term with the number of learnings that contain it, read
# by keyword search to tell common query words from rare ones. PostgreSQL
# keeps the same figures in pg_stats and needs no table.
CREATE_TERMS = (
    "CREATE VIRTUAL TABLE learnings_fts_terms USING fts5vocab(learnings_fts, 'row')"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(CREATE_TERMS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE learnings_fts_terms")
