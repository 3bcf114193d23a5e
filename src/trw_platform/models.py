"""Import every domain's models so Alembic and the mapper registry see all tables."""

from trw_platform.auth.models import (
    BackupCode,
    DeviceAuthorization,
    EmailToken,
    RefreshToken,
    TwoFactorChallenge,
    User,
    UserSession,
)
from trw_platform.core.audit import AuditEvent
from trw_platform.core.db import Base
from trw_platform.core.mail import MailMessage
from trw_platform.orgs.models import ApiKey, Membership, Organization
from trw_platform.telemetry.models import Installation, TelemetryEvent, TelemetryHourly

__all__ = [
    "ApiKey",
    "AuditEvent",
    "BackupCode",
    "Base",
    "DeviceAuthorization",
    "EmailToken",
    "Installation",
    "MailMessage",
    "Membership",
    "Organization",
    "RefreshToken",
    "TelemetryEvent",
    "TelemetryHourly",
    "TwoFactorChallenge",
    "User",
    "UserSession",
]

