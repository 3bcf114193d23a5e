"""create core tables

Revision ID: 0001_core
Revises:
Create Date: 2026-12-04 16:18:24.870421
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_core"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
    )
    op.create_table(
        "api_keys",
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=32), nullable=False),
        sa.Column(
            "scopes",
            sa.JSON().with_variant(
                postgresql.JSONB(astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_ip", sa.String(length=45), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_api_keys_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_keys_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "installations",
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.Column("installation_id", sa.String(length=128), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("framework_version", sa.String(length=64), nullable=True),
        sa.Column("os_platform", sa.String(length=64), nullable=True),
        sa.Column("python_version", sa.String(length=32), nullable=True),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_installations_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "installation_id", name=op.f("pk_installations")
        ),
    )
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_installations_org_last_seen",
            ["organization_id", "last_seen_at"],
            unique=False,
        )

    op.create_table(
        "telemetry_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("dedup_key", sa.String(length=160), nullable=True),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("installation_id", sa.String(length=128), nullable=True),
        sa.Column("session_id", sa.String(length=128), nullable=True),
        sa.Column("framework_version", sa.String(length=64), nullable=True),
        sa.Column("python_version", sa.String(length=32), nullable=True),
        sa.Column("os_platform", sa.String(length=64), nullable=True),
        sa.Column("tool_name", sa.String(length=200), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("error_type", sa.String(length=200), nullable=True),
        sa.Column("phase", sa.String(length=32), nullable=True),
        sa.Column("ceremony_score", sa.Float(), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("pytest_passed", sa.Boolean(), nullable=True),
        sa.Column("test_count", sa.BigInteger(), nullable=True),
        sa.Column("coverage_pct", sa.Float(), nullable=True),
        sa.Column("static_checks_passed", sa.Boolean(), nullable=True),
        sa.Column("mypy_passed", sa.Boolean(), nullable=True),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(
                postgresql.JSONB(astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "payload",
            sa.JSON().with_variant(
                postgresql.JSONB(astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clock_clamped", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_telemetry_events_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_events")),
        sa.UniqueConstraint(
            "organization_id",
            "dedup_key",
            name=op.f("uq_telemetry_events_organization_id_dedup_key"),
        ),
    )
    with op.batch_alter_table("telemetry_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_telemetry_events_org_occurred",
            ["organization_id", "occurred_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_telemetry_events_org_type_occurred",
            ["organization_id", "event_type", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "telemetry_hourly",
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("tool_name", sa.String(length=200), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("error_count", sa.BigInteger(), nullable=False),
        sa.Column("duration_count", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms_sum", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_telemetry_hourly_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id",
            "hour",
            "event_type",
            "status",
            "tool_name",
            name=op.f("pk_telemetry_hourly"),
        ),
    )


def downgrade() -> None:
    op.drop_table("telemetry_hourly")
    with op.batch_alter_table("telemetry_events", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_events_org_type_occurred")
        batch_op.drop_index("ix_telemetry_events_org_occurred")

    op.drop_table("telemetry_events")
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.drop_index("ix_installations_org_last_seen")

    op.drop_table("installations")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_organization_id"))

    op.drop_table("api_keys")
    op.drop_table("organizations")
