"""Memberships of users in organizations, and their roles."""

import secrets
import string

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.core.errors import Forbidden
from trw_platform.orgs import service as org_service
from trw_platform.orgs.errors import OrganizationNotFound
from trw_platform.orgs.models import Membership, Organization

log = structlog.get_logger(__name__)

OWNER = "owner"
ADMIN = "admin"
MEMBER = "member"
ROLES = (OWNER, ADMIN, MEMBER)
KEY_MANAGERS = frozenset({OWNER, ADMIN})

_SLUG_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


async def create_personal_organization(
    session: AsyncSession, *, user_id: str, email: str
) -> Organization:
    """Create a new user's own organization, with the user as its owner."""
    local_part = email.split("@", 1)[0]
    # A random suffix keeps slugs unique without revealing which are taken.
    suffix = "".join(secrets.choice(_SLUG_SUFFIX_ALPHABET) for _ in range(6))
    slug = f"{org_service.slugify(local_part)[:80]}-{suffix}"
    organization = await org_service.create_organization(
        session, name=local_part[:200], slug=slug
    )
    await add_member(
        session, organization_id=organization.id, user_id=user_id, role=OWNER
    )
    return organization


async def add_member(
    session: AsyncSession, *, organization_id: str, user_id: str, role: str
) -> Membership:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
    membership = Membership(organization_id=organization_id, user_id=user_id, role=role)
    session.add(membership)
    await session.flush()
    log.info(
        "membership.created",
        organization_id=organization_id,
        user_id=user_id,
        role=role,
    )
    return membership


async def list_for_user(
    session: AsyncSession, *, user_id: str
) -> list[tuple[Membership, Organization]]:
    result = await session.execute(
        select(Membership, Organization)
        .join(Organization, Membership.organization_id == Organization.id)
        .where(Membership.user_id == user_id)
        .order_by(Organization.name, Organization.id)
    )
    return [(membership, organization) for membership, organization in result]


async def require_membership(
    session: AsyncSession,
    *,
    user_id: str,
    organization_id: str,
    roles: frozenset[str] | None = None,
) -> Organization:
    """Return the organization if the user has one of ``roles`` in it.

    Raises OrganizationNotFound when the user is not a member, so other
    organizations' ids reveal nothing, and Forbidden for a role outside
    ``roles`` (any role when None).
    """
    result = await session.execute(
        select(Membership, Organization)
        .join(Organization, Membership.organization_id == Organization.id)
        .where(
            Membership.user_id == user_id, Membership.organization_id == organization_id
        )
    )
    row = result.one_or_none()
    if row is None:
        raise OrganizationNotFound(f"Organization {organization_id!r} not found")
    membership, organization = row
    if roles is not None and membership.role not in roles:
        raise Forbidden(
            f"This needs the role {' or '.join(sorted(roles))} in the organization;"
            f" you are {membership.role}.",
            code="insufficient_role",
        )
    return organization
