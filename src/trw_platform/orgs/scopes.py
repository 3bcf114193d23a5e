"""API key scopes. ``*`` grants every scope."""

ALL = "*"
TELEMETRY_WRITE = "telemetry:write"
TELEMETRY_READ = "telemetry:read"
LEARNINGS_WRITE = "learnings:write"
LEARNINGS_READ = "learnings:read"
SYNC_WRITE = "sync:write"
SYNC_READ = "sync:read"
RELEASES_READ = "releases:read"
RELEASES_WRITE = "releases:write"
BACKUPS_WRITE = "backups:write"

KNOWN_SCOPES = frozenset(
    {
        ALL,
        TELEMETRY_WRITE,
        TELEMETRY_READ,
        LEARNINGS_WRITE,
        LEARNINGS_READ,
        SYNC_WRITE,
        SYNC_READ,
        RELEASES_READ,
        RELEASES_WRITE,
        BACKUPS_WRITE,
    }
)


def grants(granted: list[str], needed: str) -> bool:
    return ALL in granted or needed in granted
