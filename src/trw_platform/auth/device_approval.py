"""Approval rules for device sign-in: who may approve, for which organization."""

from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth import device
from trw_platform.auth.models import DeviceAuthorization, User
from trw_platform.core import audit
from trw_platform.core.errors import BadRequest, Forbidden
from trw_platform.orgs import memberships, scopes
from trw_platform.orgs.models import ApiKey


async def decide_as_user(
    session: AsyncSession,
    *,
    user: User,
    user_code: str,
    approve: bool,
    organization_id: str | None,
    origin: audit.Origin,
) -> DeviceAuthorization:
    """Approve for one of the user's organizations, or deny.

    Any member may approve: the key goes to a client the member runs. With
    no ``organization_id``, a user in exactly one organization approves for
    it. Raises OrganizationNotFound for an organization the user is not in.
    """
    if approve:
        organization_id = await _pick_organization(session, user, organization_id)
        await memberships.require_membership(
            session, user_id=user.id, organization_id=organization_id
        )
    return await device.decide(
        session,
        user_code=user_code,
        approve=approve,
        organization_id=organization_id,
        user_id=user.id,
        origin=origin,
    )


async def _pick_organization(
    session: AsyncSession, user: User, organization_id: str | None
) -> str:
    if organization_id is not None:
        return organization_id
    rows = await memberships.list_for_user(session, user_id=user.id)
    if len(rows) != 1:
        raise BadRequest(
            "Choose the organization for the new key: send organization_id.",
            code="organization_required",
        )
    return rows[0][1].id


async def decide_with_key(
    session: AsyncSession,
    *,
    api_key: ApiKey,
    user_code: str,
    approve: bool,
    origin: audit.Origin,
) -> DeviceAuthorization:
    """Approve for the key's own organization, or deny; needs the ``*`` scope."""
    if not scopes.grants(api_key.scopes, scopes.ALL):
        raise Forbidden(
            "Approving a device sign-in needs an API key with the scope '*'.",
            code="insufficient_scope",
        )
    return await device.decide(
        session,
        user_code=user_code,
        approve=approve,
        organization_id=api_key.organization_id,
        user_id=None,
        origin=origin,
    )
