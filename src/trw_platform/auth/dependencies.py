"""Request-scoped pieces of the auth routes: session, caller, origin, throttle."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trw_platform.auth import sessions
from trw_platform.auth.errors import RecordedFailure
from trw_platform.auth.throttle import LoginThrottle
from trw_platform.core import audit
from trw_platform.core.errors import Unauthorized
from trw_platform.core.settings import Settings


async def get_recording_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield a session that commits after the handler, and after a RecordedFailure.

    Any other exception rolls back, as with ``core.db.SessionDep``. Failed
    logins, wrong codes, reused refresh tokens and pending device polls
    write counters and audit rows that must survive their error response.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except RecordedFailure:
            await session.commit()
            raise
        except Exception:
            await session.rollback()
            raise
        await session.commit()


RecordingSessionDep = Annotated[
    AsyncSession, Depends(get_recording_session, scope="function")
]


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


def get_origin(request: Request) -> audit.Origin:
    return audit.Origin.of_request(request)


OriginDep = Annotated[audit.Origin, Depends(get_origin)]


def public_base_url(request: Request) -> str:
    """Return the URL that links in mails and device codes point at.

    ``TRW_SERVER_PUBLIC_URL`` when set, else the URL of this request.
    """
    configured: str = request.app.state.settings.PUBLIC_URL
    return configured.rstrip("/") or str(request.base_url).rstrip("/")


BaseUrlDep = Annotated[str, Depends(public_base_url)]


def get_login_throttle(request: Request) -> LoginThrottle:
    settings: Settings = request.app.state.settings
    return LoginThrottle(
        request.app.state.limiter.storage,
        free_failures=settings.LOGIN_FREE_FAILURES,
        max_delay=settings.LOGIN_MAX_DELAY_SECONDS,
    )


LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]


def bearer_credential(request: Request) -> str | None:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


async def current_user(
    request: Request, session: RecordingSessionDep, settings: SettingsDep
) -> sessions.SignedIn:
    """Resolve the signed-in user from a bearer access token from /auth/login."""
    credential = bearer_credential(request)
    if credential is None:
        raise Unauthorized(
            "Missing bearer credential: send 'Authorization: Bearer <access token>'"
            " from POST /v1/auth/login."
        )
    signed_in = await sessions.authenticate(
        session, settings=settings, access_token=credential
    )
    if signed_in is None:
        raise Unauthorized()
    return signed_in


CurrentUser = Annotated[sessions.SignedIn, Depends(current_user)]


async def check_rate(request: Request, policy: str, identity: str) -> None:
    await request.app.state.limiter.check(request.scope, policy, identity)
