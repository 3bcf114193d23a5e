from datetime import timedelta

from fastapi import APIRouter, Request

from trw_platform.auth import tokens
from trw_platform.auth.schemas import TokenRead, TokenRequest
from trw_platform.core.db import SessionDep
from trw_platform.core.errors import Unauthorized
from trw_platform.core.requests import client_ip
from trw_platform.orgs import service as org_service

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", responses={401: {"description": "Invalid API key"}})
async def create_access_token(
    body: TokenRequest, request: Request, session: SessionDep
) -> TokenRead:
    """Exchange a platform API key for a short-lived JWT bearer token."""
    await request.app.state.limiter.check(
        request.scope, "auth", client_ip(request.scope)
    )
    api_key = await org_service.find_active_key(session, raw_key=body.api_key)
    if api_key is None:
        raise Unauthorized("Invalid, expired or revoked API key")

    settings = request.app.state.settings
    ttl = settings.ACCESS_TOKEN_TTL_SECONDS
    token = tokens.issue_token(
        settings.secret_key(),
        subject=api_key.id,
        token_type=tokens.API_KEY_TOKEN,
        ttl=timedelta(seconds=ttl),
        claims={"org": api_key.organization_id, "scopes": api_key.scopes},
    )
    return TokenRead(access_token=token, expires_in=ttl)
