"""Audit trail of security events: who did what, from where, and when.

Rows keep plain ids without foreign keys, so the trail outlives the users,
organizations and keys it names. Details never contain secrets.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from fastapi import Request
from sqlalchemy import Index, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from trw_platform.core.db import Base, IdMixin, JSONType, UTCDateTime, utc_now
from trw_platform.core.requests import client_ip

log = structlog.get_logger(__name__)

USER_AGENT_MAX = 300


class AuditEvent(IdMixin, Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_action_occurred", "action", "occurred_at"),
        Index("ix_audit_events_org_occurred", "organization_id", "occurred_at"),
        Index("ix_audit_events_actor_occurred", "actor_user_id", "occurred_at"),
    )

    action: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    actor_user_id: Mapped[str | None] = mapped_column(String(32))
    organization_id: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


@dataclass(frozen=True)
class Origin:
    """Origin of a security event: a request or the console."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    @classmethod
    def of_request(cls, request: Request) -> "Origin":
        user_agent = request.headers.get("user-agent")
        return cls(
            ip=client_ip(request.scope)[:45],
            user_agent=user_agent[:USER_AGENT_MAX] if user_agent else None,
            request_id=getattr(request.state, "request_id", None),
        )

    @classmethod
    def console(cls) -> "Origin":
        return cls(user_agent="trw-platform cli")

    @classmethod
    def from_context(cls, ip: str | None, user_agent: str | None = None) -> "Origin":
        """Build an origin inside a request whose Request object is not at hand."""
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        agent = user_agent[:USER_AGENT_MAX] if user_agent else None
        return cls(ip=ip[:45] if ip else None, user_agent=agent, request_id=request_id)


async def record(
    session: AsyncSession,
    *,
    action: str,
    origin: Origin,
    actor_user_id: str | None = None,
    organization_id: str | None = None,
    subject_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit event to the session's transaction."""
    event = AuditEvent(
        action=action,
        actor_user_id=actor_user_id,
        organization_id=organization_id,
        subject_id=subject_id,
        ip=origin.ip,
        user_agent=origin.user_agent,
        request_id=origin.request_id,
        details=details or {},
    )
    session.add(event)
    await session.flush()
    return event
