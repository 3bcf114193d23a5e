"""Resolve the calling organization from a bearer API key or its JWT."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth import tokens
from trw_platform.core.db import SessionDep
from trw_platform.core.errors import Forbidden, Unauthorized
from trw_platform.core.requests import client_ip
from trw_platform.core.sqlite_reader import run_read
from trw_platform.orgs import keys, scopes, service
from trw_platform.orgs.models import ApiKey

log = structlog.get_logger(__name__)

# Declares the bearer scheme in OpenAPI, so /docs offers an Authorize button;
# bearer_token() does the checking, with the error envelope.
_bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A platform API key (trw_live_... or trw_dk_...) or its JWT.",
)
BearerScheme = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)]


@dataclass(frozen=True)
class ApiKeyPrincipal:
    key_id: str
    organization_id: str
    scopes: list[str]


def bearer_token(request: Request) -> str:
    """Return the bearer credential; raises Unauthorized when absent."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized(
            "Missing bearer credential: send 'Authorization: Bearer <API key>'."
        )
    return credential.strip()


async def _resolve_key(
    request: Request, session: AsyncSession, credential: str
) -> ApiKey:
    api_key: ApiKey | None
    if credential.startswith(keys.PREFIXES):
        # On SQLite the lookup runs in a reader thread. A request that writes
        # nothing then never takes a connection of the async engine.
        api_key = await run_read(
            request.app.state.sqlite_reader,
            session,
            partial(service.active_key, raw_key=credential),
        )
    else:
        api_key = await _key_from_token(request, session, credential)

    if api_key is None:
        log.warning("auth.rejected", client_ip=client_ip(request.scope))
        await request.app.state.limiter.check(
            request.scope, "auth", client_ip(request.scope)
        )
        raise Unauthorized("Invalid, expired or revoked API key or token.")
    return api_key


async def _key_from_token(
    request: Request, session: AsyncSession, credential: str
) -> ApiKey | None:
    secret = request.app.state.settings.secret_key()
    claims = tokens.decode_token(secret, credential, token_type=tokens.API_KEY_TOKEN)
    if claims is None:
        return None
    return await run_read(
        request.app.state.sqlite_reader,
        session,
        partial(service.active_key_by_id, key_id=claims["sub"]),
    )


def require_scope(
    scope: str, *, policy: str = "default"
) -> Callable[..., Awaitable[ApiKeyPrincipal]]:
    """Build a dependency that authenticates, rate-limits and checks one scope."""

    async def dependency(
        request: Request, session: SessionDep, _: BearerScheme
    ) -> ApiKeyPrincipal:
        # NOTE: this runs in the request's session and may write the key's
        # last use. A route that reads its body itself must therefore read it
        # in a dependency declared before this one. Otherwise a slow body keeps
        # a connection, and on SQLite the write lock, while it arrives.
        api_key = await _authorize(
            request, session, bearer_token(request), scope, policy
        )
        await _record_use(request, session, api_key)

        request.state.organization_id = api_key.organization_id
        return ApiKeyPrincipal(
            api_key.id, api_key.organization_id, list(api_key.scopes)
        )

    return dependency


async def _authorize(
    request: Request, session: AsyncSession, credential: str, scope: str, policy: str
) -> ApiKey:
    api_key = await _resolve_key(request, session, credential)
    await request.app.state.limiter.check(request.scope, policy, api_key.id)
    if not scopes.grants(api_key.scopes, scope):
        raise Forbidden(
            f"This API key lacks the scope {scope!r}.", code="insufficient_scope"
        )
    return api_key


async def _record_use(request: Request, session: AsyncSession, api_key: ApiKey) -> None:
    await service.record_key_use(
        session,
        api_key=api_key,
        ip=client_ip(request.scope),
        user_agent=request.headers.get("user-agent"),
    )


TelemetryWriter = Annotated[
    ApiKeyPrincipal, Depends(require_scope(scopes.TELEMETRY_WRITE, policy="telemetry"))
]
TelemetryReader = Annotated[
    ApiKeyPrincipal, Depends(require_scope(scopes.TELEMETRY_READ))
]
