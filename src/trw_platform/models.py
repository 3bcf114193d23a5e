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
from trw_platform.learnings.models import (
    Learning,
    LearningSequence,
    LearningTag,
    is_unmapped_table,
)
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
    "Learning",
    "LearningSequence",
    "LearningTag",
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


def include_name(name: str | None, type_: str, _parent_names: object) -> bool:
    """Tell Alembic's comparison to skip tables that no model maps."""
    return not (type_ == "table" and is_unmapped_table(name))
