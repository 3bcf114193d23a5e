from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from trw_platform.core.db import Base, JSONType, UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class TelemetryEvent(Base):
    __tablename__ = "telemetry_events"
    __table_args__ = (
        UniqueConstraint("organization_id", "dedup_key"),
        Index(
            "ix_telemetry_events_org_occurred", "organization_id", "occurred_at", "id"
        ),
        Index(
            "ix_telemetry_events_org_type_occurred",
            "organization_id",
            "event_type",
            "occurred_at",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    event_id: Mapped[str | None] = mapped_column(String(128))
    dedup_key: Mapped[str | None] = mapped_column(String(160))
    event_type: Mapped[str] = mapped_column(String(100))
    installation_id: Mapped[str | None] = mapped_column(String(128))
    session_id: Mapped[str | None] = mapped_column(String(128))
    framework_version: Mapped[str | None] = mapped_column(String(64))
    python_version: Mapped[str | None] = mapped_column(String(32))
    os_platform: Mapped[str | None] = mapped_column(String(64))
    tool_name: Mapped[str | None] = mapped_column(String(200))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str | None] = mapped_column(String(32))
    error_type: Mapped[str | None] = mapped_column(String(200))
    phase: Mapped[str | None] = mapped_column(String(32))
    ceremony_score: Mapped[float | None] = mapped_column(Float)
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    pytest_passed: Mapped[bool | None] = mapped_column(Boolean)
    test_count: Mapped[int | None] = mapped_column(BigInteger)
    coverage_pct: Mapped[float | None] = mapped_column(Float)
    static_checks_passed: Mapped[bool | None] = mapped_column(Boolean)
    mypy_passed: Mapped[bool | None] = mapped_column(Boolean)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    clock_clamped: Mapped[bool] = mapped_column(Boolean, default=False)


class TelemetryHourly(Base):
    """Per-hour counts kept current on every write, so reads scan hours."""

    __tablename__ = "telemetry_hourly"

    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    tool_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_count: Mapped[int] = mapped_column(BigInteger)
    error_count: Mapped[int] = mapped_column(BigInteger)
    duration_count: Mapped[int] = mapped_column(BigInteger)
    duration_ms_sum: Mapped[float] = mapped_column(Float)


class Installation(Base):
    __tablename__ = "installations"
    __table_args__ = (
        Index("ix_installations_org_last_seen", "organization_id", "last_seen_at"),
    )

    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    installation_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    framework_version: Mapped[str | None] = mapped_column(String(64))
    os_platform: Mapped[str | None] = mapped_column(String(64))
    python_version: Mapped[str | None] = mapped_column(String(32))
    event_count: Mapped[int] = mapped_column(BigInteger)
