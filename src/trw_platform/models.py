"""Import every domain's models so Alembic and the mapper registry see all tables."""

from trw_platform.core.db import Base
from trw_platform.orgs.models import ApiKey, Organization
from trw_platform.telemetry.models import Installation, TelemetryEvent, TelemetryHourly

__all__ = [
    "ApiKey",
    "Base",
    "Installation",
    "Organization",
    "TelemetryEvent",
    "TelemetryHourly",
]
