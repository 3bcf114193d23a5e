import hashlib

from fastapi import APIRouter, Request

from trw_platform.auth import two_factor
from trw_platform.auth.dependencies import (
    CurrentUser,
    OriginDep,
    RecordingSessionDep,
    SettingsDep,
    check_rate,
)
from trw_platform.auth.schemas import (
    BackupCodesRead,
    CodeRequest,
    OptionalCodeRequest,
    SessionTokensRead,
    TwoFactorDisableRead,
    TwoFactorEnableRead,
    TwoFactorEnableRequest,
    TwoFactorStatusRead,
    TwoFactorVerifyRequest,
)
from trw_platform.core.requests import client_ip

router = APIRouter(prefix="/2fa")

NO_ACCESS_TOKEN = {401: {"description": "Missing, invalid or expired access token"}}
WRONG_CODE = {400: {"description": "Wrong, expired or used code"}}
CONFLICT = {409: {"description": "Two-factor authentication is in the other state"}}


async def limit_code_mail(request: Request, user_id: str) -> None:
    key = hashlib.sha256(f"2fa:{user_id}".encode()).hexdigest()[:32]
    await check_rate(request, "account_mail", key)


@router.post("/enable", responses=NO_ACCESS_TOKEN | CONFLICT)
async def enable_two_factor(
    request: Request,
    signed_in: CurrentUser,
    session: RecordingSessionDep,
    origin: OriginDep,
    settings: SettingsDep,
    body: TwoFactorEnableRequest | None = None,
) -> TwoFactorEnableRead:
    """Start 2FA enablement by sending an email verification code.

    With ``{"method": "totp"}`` it returns a secret for an authenticator app
    instead; confirm with a code from the app.
    """
    method = body.method if body else two_factor.EMAIL
    if method == two_factor.EMAIL:
        await limit_code_mail(request, signed_in.user.id)
    started = await two_factor.enable(
        session, user=signed_in.user, method=method, origin=origin, settings=settings
    )
    return TwoFactorEnableRead(
        method=started.method,
        code_sent=started.code_sent,
        expires_in=two_factor.CODE_TTL_SECONDS,
        secret=started.secret,
        otpauth_uri=started.otpauth_uri,
    )


@router.post("/confirm-enable", responses=NO_ACCESS_TOKEN | WRONG_CODE | CONFLICT)
async def confirm_two_factor(
    body: CodeRequest,
    signed_in: CurrentUser,
    session: RecordingSessionDep,
    origin: OriginDep,
    settings: SettingsDep,
) -> BackupCodesRead:
    """Confirm 2FA enablement and return the generated backup codes."""
    codes = await two_factor.confirm_enable(
        session, user=signed_in.user, code=body.code, origin=origin, settings=settings
    )
    assert signed_in.user.two_factor_method is not None
    return BackupCodesRead(method=signed_in.user.two_factor_method, backup_codes=codes)


@router.post("/disable", responses=NO_ACCESS_TOKEN | WRONG_CODE | CONFLICT)
async def disable_two_factor(
    request: Request,
    signed_in: CurrentUser,
    session: RecordingSessionDep,
    origin: OriginDep,
    settings: SettingsDep,
    body: OptionalCodeRequest | None = None,
) -> TwoFactorDisableRead:
    """Disable 2FA with a valid email code or backup code.

    Without a code, email-method users get a code mailed for this step.
    """
    code = body.code if body else None
    if code is None:
        await limit_code_mail(request, signed_in.user.id)
    disabled = await two_factor.disable(
        session, user=signed_in.user, code=code, origin=origin, settings=settings
    )
    return TwoFactorDisableRead(enabled=not disabled, code_sent=not disabled)


@router.get("/status", responses=NO_ACCESS_TOKEN)
async def read_two_factor_status(
    signed_in: CurrentUser, session: RecordingSessionDep
) -> TwoFactorStatusRead:
    """Return the current 2FA state for the signed-in user."""
    state = await two_factor.status(session, user=signed_in.user)
    return TwoFactorStatusRead(
        enabled=state.enabled,
        method=state.method,
        backup_codes_remaining=state.backup_codes_remaining,
        pending_method=state.pending_method,
    )


@router.post(
    "/verify",
    responses={401: {"description": "Unknown, expired or finished challenge"}}
    | WRONG_CODE,
)
async def verify_two_factor(
    body: TwoFactorVerifyRequest,
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    settings: SettingsDep,
) -> SessionTokensRead:
    """Finish a 2FA login challenge using the temporary token from /auth/login."""
    await check_rate(request, "auth", client_ip(request.scope))
    _, pair = await two_factor.verify_login(
        session,
        challenge_token=body.challenge_token,
        code=body.code,
        origin=origin,
        settings=settings,
    )
    return SessionTokensRead(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        refresh_expires_in=pair.refresh_expires_in,
    )
