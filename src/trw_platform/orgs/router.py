"""Organization API keys, managed by signed-in owners and admins."""

from datetime import timedelta

from fastapi import APIRouter, Response

from trw_platform.auth.dependencies import CurrentUser, OriginDep, RecordingSessionDep
from trw_platform.core.db import utc_now
from trw_platform.core.errors import AppError
from trw_platform.orgs import memberships, scopes, service
from trw_platform.orgs.models import ApiKey
from trw_platform.orgs.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead

router = APIRouter(prefix="/orgs/{organization_id}/api-keys", tags=["orgs"])

ERRORS = {
    401: {"description": "Missing, invalid or expired access token"},
    403: {"description": "Needs the owner or admin role"},
    404: {"description": "Organization or key not found"},
}


class UnknownScope(AppError):
    status_code = 422
    code = "unknown_scope"


def key_read(api_key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead.model_validate(api_key, from_attributes=True)


@router.get("", responses=ERRORS)
async def list_api_keys(
    organization_id: str, signed_in: CurrentUser, session: RecordingSessionDep
) -> list[ApiKeyRead]:
    """List the organization's API keys (hints only, never the keys)."""
    await memberships.require_membership(
        session,
        user_id=signed_in.user.id,
        organization_id=organization_id,
        roles=memberships.KEY_MANAGERS,
    )
    found = await service.list_api_keys(session, organization_id=organization_id)
    return [key_read(api_key) for api_key in found]


@router.post(
    "", status_code=201, responses=ERRORS | {422: {"description": "Bad scope"}}
)
async def create_api_key(
    organization_id: str,
    body: ApiKeyCreate,
    signed_in: CurrentUser,
    session: RecordingSessionDep,
    origin: OriginDep,
) -> ApiKeyCreated:
    """Create an API key; the response is the only time the key is shown."""
    await memberships.require_membership(
        session,
        user_id=signed_in.user.id,
        organization_id=organization_id,
        roles=memberships.KEY_MANAGERS,
    )
    unknown = sorted(set(body.scopes) - scopes.KNOWN_SCOPES)
    if unknown:
        raise UnknownScope(
            f"Unknown scope {', '.join(unknown)}; known scopes:"
            f" {', '.join(sorted(scopes.KNOWN_SCOPES))}"
        )
    expires_at = (
        utc_now() + timedelta(days=body.expires_in_days)
        if body.expires_in_days
        else None
    )
    api_key, raw_key = await service.create_api_key(
        session,
        organization_id=organization_id,
        name=body.name,
        scopes=body.scopes,
        expires_at=expires_at,
        origin=origin,
        actor_user_id=signed_in.user.id,
    )
    return ApiKeyCreated(**key_read(api_key).model_dump(), api_key=raw_key)


@router.delete("/{key_id}", status_code=204, responses=ERRORS)
async def revoke_api_key(
    organization_id: str,
    key_id: str,
    signed_in: CurrentUser,
    session: RecordingSessionDep,
    origin: OriginDep,
) -> Response:
    """Revoke an API key; requests with it, or with its JWTs, fail from now on."""
    await memberships.require_membership(
        session,
        user_id=signed_in.user.id,
        organization_id=organization_id,
        roles=memberships.KEY_MANAGERS,
    )
    await service.revoke_api_key(
        session,
        key_id=key_id,
        organization_id=organization_id,
        origin=origin,
        actor_user_id=signed_in.user.id,
    )
    return Response(status_code=204)
