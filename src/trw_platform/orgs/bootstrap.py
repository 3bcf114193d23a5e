"""First-run set-up: an empty database gets one organization and one key."""

from ipaddress import ip_address
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.orgs import scopes, service

FIRST_ORG_NAME = "Default"


async def create_first_org_if_empty(session: AsyncSession) -> str | None:
    """Create the first organization and key on an empty database.

    Returns the raw key, which is stored only as a hash, or None when any
    organization already exists.
    """
    if await service.count_organizations(session) > 0:
        return None
    organization = await service.create_organization(session, name=FIRST_ORG_NAME)
    _, raw_key = await service.create_api_key(
        session, organization_id=organization.id, name="first key", scopes=[scopes.ALL]
    )
    return raw_key


def needs_trusted_host(public_url: str) -> bool:
    """Tell whether trw-mcp withholds the key from this URL unless trusted.

    trw-mcp 7 and later send the bearer only over https to its hosted
    platform, to hosts in TRW_PLATFORM_TRUSTED_HOSTS, or over plain http to
    localhost, 127.0.0.1 and ::1.
    """
    host = urlsplit(public_url).hostname or ""
    if host == "localhost":
        return False
    try:
        return not ip_address(host).is_loopback
    except ValueError:
        return True
