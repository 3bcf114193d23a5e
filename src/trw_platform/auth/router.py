import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import APIRouter, Request, Response

from trw_platform.auth import accounts, login, sessions, tokens
from trw_platform.auth.dependencies import (
    BaseUrlDep,
    CurrentUser,
    LoginThrottleDep,
    OriginDep,
    RecordingSessionDep,
    SettingsDep,
    check_rate,
)
from trw_platform.auth.device_router import router as device_router
from trw_platform.auth.schemas import (
    ChangePasswordRequest,
    EmailRequest,
    LoginRequest,
    LogoutRequest,
    MembershipRead,
    MessageRead,
    RefreshRequest,
    RegisterRequest,
    ResetPasswordRequest,
    SessionTokensRead,
    TokenRead,
    TokenRequest,
    TwoFactorChallengeRead,
    UserRead,
    VerifyEmailRequest,
)
from trw_platform.auth.two_factor_router import router as two_factor_router
from trw_platform.core.db import SessionDep
from trw_platform.core.errors import Unauthorized
from trw_platform.core.requests import client_ip
from trw_platform.orgs import memberships
from trw_platform.orgs import service as org_service

router = APIRouter(prefix="/auth", tags=["auth"])
router.include_router(two_factor_router)
router.include_router(device_router)

# One fixed message per route, whether or not the address has an account.
REGISTER_MESSAGE = (
    "Check your inbox: we sent a message to this address with the next step."
)
RESEND_MESSAGE = (
    "If this address has an unverified account, a new verification link is on its way."
)
RESET_MESSAGE = "If this address has an account, a password reset link is on its way."

# Register, resend and reset respond no sooner than this. Known addresses
# cost a token, a mail and a few rows more than unknown ones (about 2 ms on
# SQLite), and the wait hides that difference.
ANSWER_FLOOR_SECONDS = 0.25

RATE_LIMITED = {429: {"description": "Too many requests; see Retry-After"}}
INVALID_TOKEN = {400: {"description": "Invalid, expired or used link token"}}
NO_ACCESS_TOKEN = {401: {"description": "Missing, invalid or expired access token"}}


def tokens_read(pair: sessions.TokenPair) -> SessionTokensRead:
    return SessionTokensRead(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        refresh_expires_in=pair.refresh_expires_in,
    )


@asynccontextmanager
async def answer_no_sooner(seconds: float) -> AsyncIterator[None]:
    started = time.monotonic()
    yield
    remaining = seconds - (time.monotonic() - started)
    if remaining > 0:
        await asyncio.sleep(remaining)


async def limit_account_mail(request: Request, email: str) -> None:
    await check_rate(request, "auth", client_ip(request.scope))
    address_key = hashlib.sha256(email.encode()).hexdigest()[:32]
    await check_rate(request, "account_mail", address_key)


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


@router.post(
    "/register",
    status_code=202,
    responses={422: {"description": "Invalid address or weak password"}} | RATE_LIMITED,
)
async def register(
    body: RegisterRequest,
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    base_url: BaseUrlDep,
) -> MessageRead:
    """Create an email/password account.

    Always returns the same anti-enumeration message.
    """
    await limit_account_mail(request, body.email)
    async with answer_no_sooner(ANSWER_FLOOR_SECONDS):
        await accounts.register(
            session,
            email=body.email,
            password=body.password,
            origin=origin,
            base_url=base_url,
        )
    return MessageRead(message=REGISTER_MESSAGE)


@router.post(
    "/login",
    responses={401: {"description": "invalid email or password"}}
    | {403: {"description": "Email address not verified"}}
    | RATE_LIMITED,
)
async def login_with_password(
    body: LoginRequest,
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
) -> SessionTokensRead | TwoFactorChallengeRead:
    """Authenticate with email and password.

    Returns an access token or a 2FA challenge.
    """
    await check_rate(request, "auth", client_ip(request.scope))
    outcome = await login.login(
        session,
        email=body.email,
        password=body.password,
        origin=origin,
        settings=settings,
        throttle=throttle,
    )
    if outcome.challenge is not None:
        challenge = outcome.challenge
        return TwoFactorChallengeRead(
            challenge_token=challenge.challenge_token,
            method=challenge.method,
            expires_in=challenge.expires_in,
        )
    assert outcome.tokens is not None
    return tokens_read(outcome.tokens)


@router.post("/verify-email", responses=INVALID_TOKEN | RATE_LIMITED)
async def verify_email(
    body: VerifyEmailRequest,
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
) -> MessageRead:
    """Verify email address using the token from the verification email."""
    await check_rate(request, "auth", client_ip(request.scope))
    await accounts.verify_email(session, raw_token=body.token, origin=origin)
    return MessageRead(message="Email address verified; you can sign in now.")


@router.post("/resend-verification", status_code=202, responses=RATE_LIMITED)
async def resend_verification(
    body: EmailRequest,
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    base_url: BaseUrlDep,
) -> MessageRead:
    """Request a new verification email. Always returns a generic success message."""
    await limit_account_mail(request, body.email)
    async with answer_no_sooner(ANSWER_FLOOR_SECONDS):
        await accounts.resend_verification(
            session, email=body.email, origin=origin, base_url=base_url
        )
    return MessageRead(message=RESEND_MESSAGE)


@router.post("/request-password-reset", status_code=202, responses=RATE_LIMITED)
async def request_password_reset(
    body: EmailRequest,
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    base_url: BaseUrlDep,
) -> MessageRead:
    """Send a password reset link. Always returns the same anti-enumeration message."""
    await limit_account_mail(request, body.email)
    async with answer_no_sooner(ANSWER_FLOOR_SECONDS):
        await accounts.request_password_reset(
            session, email=body.email, origin=origin, base_url=base_url
        )
    return MessageRead(message=RESET_MESSAGE)


@router.post(
    "/reset-password",
    responses=INVALID_TOKEN | {422: {"description": "Weak password"}} | RATE_LIMITED,
)
async def reset_password(
    body: ResetPasswordRequest,
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
) -> MessageRead:
    """Reset a password using the token from the email reset flow."""
    await check_rate(request, "auth", client_ip(request.scope))
    await accounts.reset_password(
        session, raw_token=body.token, password=body.password, origin=origin
    )
    return MessageRead(message="Password changed; every session was signed out.")


@router.post(
    "/change-password",
    responses=NO_ACCESS_TOKEN
    | {403: {"description": "Wrong current password"}}
    | {422: {"description": "Weak password"}},
)
async def change_password(
    body: ChangePasswordRequest,
    signed_in: CurrentUser,
    session: RecordingSessionDep,
    origin: OriginDep,
    settings: SettingsDep,
) -> SessionTokensRead:
    """Change the password, end the other sessions and return fresh tokens."""
    pair = await accounts.change_password(
        session,
        signed_in=signed_in,
        current_password=body.current_password,
        new_password=body.new_password,
        origin=origin,
        settings=settings,
    )
    return tokens_read(pair)


@router.post(
    "/refresh",
    responses={401: {"description": "Invalid, used or revoked refresh token"}}
    | RATE_LIMITED,
)
async def refresh_session(
    body: RefreshRequest,
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    settings: SettingsDep,
) -> SessionTokensRead:
    """Trade a refresh token for a new access token and a new refresh token."""
    await check_rate(request, "auth", client_ip(request.scope))
    pair = await sessions.refresh(
        session, raw_token=body.refresh_token, origin=origin, settings=settings
    )
    return tokens_read(pair)


@router.post("/logout", status_code=204, responses=NO_ACCESS_TOKEN)
async def logout(
    signed_in: CurrentUser,
    session: RecordingSessionDep,
    origin: OriginDep,
    body: LogoutRequest | None = None,
) -> Response:
    """End this session, or every session of the user with ``all_sessions``."""
    all_sessions = body is not None and body.all_sessions
    await sessions.logout(
        session, signed_in=signed_in, all_sessions=all_sessions, origin=origin
    )
    return Response(status_code=204)


@router.get("/me", responses=NO_ACCESS_TOKEN)
async def read_current_user(
    signed_in: CurrentUser, session: RecordingSessionDep
) -> UserRead:
    """Return the signed-in user and their organizations."""
    user = signed_in.user
    rows = await memberships.list_for_user(session, user_id=user.id)
    return UserRead(
        id=user.id,
        email=user.email,
        email_verified=user.email_verified_at is not None,
        two_factor_method=user.two_factor_method,
        organizations=[
            MembershipRead(
                organization_id=organization.id,
                organization_name=organization.name,
                organization_slug=organization.slug,
                role=membership.role,
            )
            for membership, organization in rows
        ],
    )
