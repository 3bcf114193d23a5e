"""Organizations and their platform API keys."""

import re
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from trw_platform.core import audit
from trw_platform.core.db import utc_now
from trw_platform.core.errors import BadRequest
from trw_platform.core.security import hash_token
from trw_platform.orgs import keys
from trw_platform.orgs.errors import ApiKeyNotFound, OrganizationNotFound, SlugTaken
from trw_platform.orgs.models import ApiKey, Organization

log = structlog.get_logger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)
NAME_MAX = 200


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:100] or "org"


def _checked_name(name: str, what: str) -> str:
    """Return the stripped name; raises BadRequest when blank or too long."""
    stripped = name.strip()
    if not stripped or len(stripped) > NAME_MAX:
        raise BadRequest(
            f"The {what} must be 1 to {NAME_MAX} characters.", code="invalid_name"
        )
    return stripped


async def create_organization(
    session: AsyncSession, *, name: str, slug: str | None = None
) -> Organization:
    """Create an organization; raises SlugTaken when the slug is in use."""
    name = _checked_name(name, "organization name")
    slug = slugify(slug or name)
    existing = await session.scalar(
        select(Organization).where(Organization.slug == slug)
    )
    if existing is not None:
        raise SlugTaken(f"An organization with slug {slug!r} already exists")

    organization = Organization(name=name, slug=slug)
    session.add(organization)
    await session.flush()
    log.info("organization.created", organization_id=organization.id, slug=slug)
    return organization


async def list_organizations(session: AsyncSession) -> list[Organization]:
    result = await session.scalars(
        select(Organization).order_by(Organization.created_at)
    )
    return list(result)


async def count_organizations(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Organization)) or 0


async def get_organization(session: AsyncSession, *, ref: str) -> Organization:
    """Find an organization by id or slug; raises OrganizationNotFound."""
    organization = await session.scalar(
        select(Organization).where(
            or_(Organization.id == ref, Organization.slug == ref)
        )
    )
    if organization is None:
        raise OrganizationNotFound(f"Organization {ref!r} not found")
    return organization


async def create_api_key(
    session: AsyncSession,
    *,
    organization_id: str,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    prefix: str = keys.LIVE_PREFIX,
    origin: audit.Origin | None = None,
    actor_user_id: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its raw value, which is not stored.

    ``origin`` defaults to the console, for keys made by CLI commands.
    """
    name = _checked_name(name, "key name")
    raw_key = keys.generate_key(prefix)
    api_key = ApiKey(
        organization_id=organization_id,
        name=name,
        key_hash=hash_token(raw_key),
        hint=keys.key_hint(raw_key),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
    )
    session.add(api_key)
    await session.flush()
    log.info(
        "api_key.created",
        key_id=api_key.id,
        organization_id=organization_id,
        scopes=api_key.scopes,
    )
    await audit.record(
        session,
        action="api_key.created",
        origin=origin or audit.Origin.console(),
        actor_user_id=actor_user_id,
        organization_id=organization_id,
        subject_id=api_key.id,
        details={"name": name, "scopes": api_key.scopes, "prefix": prefix},
    )
    return api_key, raw_key


async def list_api_keys(session: AsyncSession, *, organization_id: str) -> list[ApiKey]:
    result = await session.scalars(
        select(ApiKey)
        .where(ApiKey.organization_id == organization_id)
        .order_by(ApiKey.created_at)
    )
    return list(result)


async def revoke_api_key(
    session: AsyncSession,
    *,
    key_id: str,
    organization_id: str | None = None,
    origin: audit.Origin | None = None,
    actor_user_id: str | None = None,
) -> ApiKey:
    """Revoke a key; revoking twice keeps the first revocation time."""
    query = select(ApiKey).where(ApiKey.id == key_id)
    if organization_id is not None:
        query = query.where(ApiKey.organization_id == organization_id)
    api_key = await session.scalar(query)
    if api_key is None:
        raise ApiKeyNotFound(f"API key {key_id!r} not found")

    if api_key.revoked_at is None:
        api_key.revoked_at = utc_now()
        await session.flush()
        log.info(
            "api_key.revoked", key_id=key_id, organization_id=api_key.organization_id
        )
        await audit.record(
            session,
            action="api_key.revoked",
            origin=origin or audit.Origin.console(),
            actor_user_id=actor_user_id,
            organization_id=api_key.organization_id,
            subject_id=key_id,
        )
    return api_key


def active_key(session: Session, *, raw_key: str) -> ApiKey | None:
    """Look up a raw key; None when malformed, unknown, expired or revoked."""
    if not keys.is_well_formed(raw_key):
        return None

    api_key = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_token(raw_key))
    )
    if api_key is None or not api_key.is_active(utc_now()):
        return None
    return api_key


def active_key_by_id(session: Session, *, key_id: str) -> ApiKey | None:
    api_key = session.get(ApiKey, key_id)
    if api_key is None or not api_key.is_active(utc_now()):
        return None
    return api_key


async def find_active_key(session: AsyncSession, *, raw_key: str) -> ApiKey | None:
    """Look up a raw key in an async session; see ``active_key``."""
    return await session.run_sync(active_key, raw_key=raw_key)


async def record_key_use(
    session: AsyncSession,
    *,
    api_key: ApiKey,
    ip: str,
    user_agent: str | None = None,
) -> None:
    """Record the last use time and IP unless recorded less than a minute ago."""
    now = utc_now()
    if (
        api_key.last_used_at is not None
        and now - api_key.last_used_at < LAST_USED_RESOLUTION
    ):
        return

    first_use = api_key.last_used_at is None
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == api_key.id)
        .values(last_used_at=now, last_used_ip=ip[:45])
        .execution_options(synchronize_session=False)
    )
    if first_use:
        log.info(
            "api_key.first_use",
            key_id=api_key.id,
            organization_id=api_key.organization_id,
        )
        await audit.record(
            session,
            action="api_key.first_used",
            origin=audit.Origin.from_context(ip, user_agent),
            organization_id=api_key.organization_id,
            subject_id=api_key.id,
        )
