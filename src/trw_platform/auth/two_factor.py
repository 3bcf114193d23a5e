"""Two-factor authentication: enabling, disabling and finishing a login.

The second factor is a code mailed per challenge (method ``email``) or a
TOTP code from an authenticator app (method ``totp``, the stronger one, as
it does not depend on the mailbox). A backup code replaces either one at
login and when disabling.
"""

from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth import backup_codes, challenges, emails, sessions, totp
from trw_platform.auth.errors import (
    InvalidChallenge,
    InvalidCode,
    NoPendingEnablement,
    TwoFactorAlreadyEnabled,
    TwoFactorNotEnabled,
)
from trw_platform.auth.models import TwoFactorChallenge, User
from trw_platform.core import audit
from trw_platform.core.db import utc_now
from trw_platform.core.settings import Settings

log = structlog.get_logger(__name__)

EMAIL = "email"
TOTP = "totp"
CODE_TTL_SECONDS = int(challenges.CODE_TTL.total_seconds())


@dataclass(frozen=True)
class LoginChallenge:
    challenge_token: str
    method: str
    expires_in: int


@dataclass(frozen=True)
class EnableStarted:
    method: str
    code_sent: bool
    secret: str | None = None
    otpauth_uri: str | None = None


async def _open(
    session: AsyncSession,
    *,
    user: User,
    purpose: str,
    method: str,
    origin: audit.Origin,
    settings: Settings,
) -> challenges.OpenedChallenge:
    opened = await challenges.open_challenge(
        session,
        user_id=user.id,
        purpose=purpose,
        method=method,
        secret_key=settings.secret_key(),
    )
    if opened.code is not None:
        await emails.send_two_factor_code(
            session,
            recipient=user.email,
            code=opened.code,
            purpose=purpose,
            minutes=CODE_TTL_SECONDS // 60,
        )
        await audit.record(
            session,
            action="two_factor.code_sent",
            origin=origin,
            actor_user_id=user.id,
            details={"purpose": purpose},
        )
    return opened


async def start_login(
    session: AsyncSession, *, user: User, origin: audit.Origin, settings: Settings
) -> LoginChallenge:
    """Open a login challenge for a user whose password was right."""
    method = user.two_factor_method or EMAIL
    opened = await _open(
        session,
        user=user,
        purpose=challenges.LOGIN,
        method=method,
        origin=origin,
        settings=settings,
    )
    assert opened.token is not None
    return LoginChallenge(opened.token, method, CODE_TTL_SECONDS)


async def verify_login(
    session: AsyncSession,
    *,
    challenge_token: str,
    code: str,
    origin: audit.Origin,
    settings: Settings,
) -> tuple[User, sessions.TokenPair]:
    """Finish a login with its code or a backup code; starts the session.

    Raises InvalidChallenge for an unknown, expired or finished challenge and
    InvalidCode for a wrong code; the attempt is committed either way.
    """
    challenge = await challenges.find_login_challenge(session, token=challenge_token)
    if challenge is None:
        raise InvalidChallenge()
    user = await session.get_one(User, challenge.user_id)
    await _pass(
        session,
        user=user,
        challenge=challenge,
        code=code,
        origin=origin,
        settings=settings,
    )
    tokens = await sessions.start_session(
        session, user=user, origin=origin, settings=settings
    )
    await audit.record(
        session,
        action="login.succeeded",
        origin=origin,
        actor_user_id=user.id,
        details={"two_factor": True},
    )
    return user, tokens


async def _pass(
    session: AsyncSession,
    *,
    user: User,
    challenge: TwoFactorChallenge,
    code: str,
    origin: audit.Origin,
    settings: Settings,
) -> None:
    """Check a code against a challenge; raises InvalidCode when it fails."""
    await challenges.count_attempt(session, challenge)
    factor = await _matching_factor(
        session, user=user, challenge=challenge, code=code, settings=settings
    )
    if factor is None:
        await audit.record(
            session,
            action="two_factor.failed",
            origin=origin,
            actor_user_id=user.id,
            details={"purpose": challenge.purpose, "attempt": challenge.attempts},
        )
        log.warning("two_factor.failed", user_id=user.id, purpose=challenge.purpose)
        raise InvalidCode()

    challenge.used_at = utc_now()
    await session.flush()
    await audit.record(
        session,
        action="two_factor.passed",
        origin=origin,
        actor_user_id=user.id,
        details={"purpose": challenge.purpose, "factor": factor},
    )


async def _matching_factor(
    session: AsyncSession,
    *,
    user: User,
    challenge: TwoFactorChallenge,
    code: str,
    settings: Settings,
) -> str | None:
    secret_key = settings.secret_key()
    if challenges.mailed_code_matches(challenge, code=code, secret_key=secret_key):
        return "email_code"
    if challenge.method == TOTP:
        secret = (
            user.totp_pending_secret
            if challenge.purpose == challenges.ENABLE
            else user.totp_secret
        )
        step = totp.matching_step(secret or "", code, last_step=user.totp_last_step)
        if secret and step is not None:
            user.totp_last_step = step
            return "totp"
    if challenge.purpose != challenges.ENABLE and await backup_codes.use(
        session, user_id=user.id, code=code, secret_key=secret_key
    ):
        return "backup_code"
    return None


async def enable(
    session: AsyncSession,
    *,
    user: User,
    method: str,
    origin: audit.Origin,
    settings: Settings,
) -> EnableStarted:
    """Start enabling: mail a code, or hand out a new TOTP secret."""
    if user.two_factor_method is not None:
        raise TwoFactorAlreadyEnabled()
    user.totp_pending_secret = totp.new_secret() if method == TOTP else None
    await _open(
        session,
        user=user,
        purpose=challenges.ENABLE,
        method=method,
        origin=origin,
        settings=settings,
    )
    if method == EMAIL:
        return EnableStarted(method=EMAIL, code_sent=True)

    assert user.totp_pending_secret is not None
    return EnableStarted(
        method=TOTP,
        code_sent=False,
        secret=user.totp_pending_secret,
        otpauth_uri=totp.provisioning_uri(user.totp_pending_secret, account=user.email),
    )


async def confirm_enable(
    session: AsyncSession,
    *,
    user: User,
    code: str,
    origin: audit.Origin,
    settings: Settings,
) -> list[str]:
    """Turn 2FA on with the enablement code; returns the new backup codes."""
    if user.two_factor_method is not None:
        raise TwoFactorAlreadyEnabled()
    challenge = await challenges.latest_open(
        session, user_id=user.id, purpose=challenges.ENABLE
    )
    if challenge is None:
        raise NoPendingEnablement()
    await _pass(
        session,
        user=user,
        challenge=challenge,
        code=code,
        origin=origin,
        settings=settings,
    )

    user.two_factor_method = challenge.method
    if challenge.method == TOTP:
        user.totp_secret, user.totp_pending_secret = user.totp_pending_secret, None
    codes = await backup_codes.replace_all(
        session, user_id=user.id, secret_key=settings.secret_key()
    )
    await audit.record(
        session,
        action="two_factor.enabled",
        origin=origin,
        actor_user_id=user.id,
        details={"method": challenge.method},
    )
    log.info("two_factor.enabled", user_id=user.id, method=challenge.method)
    return codes


async def disable(
    session: AsyncSession,
    *,
    user: User,
    code: str | None,
    origin: audit.Origin,
    settings: Settings,
) -> bool:
    """Turn 2FA off with a valid code; returns True once it is off.

    Without a code, users of the email method get one mailed and the result
    is False. A code is checked against the open disable challenge, which is
    opened on the first attempt for TOTP and backup codes, so every attempt
    counts against a limit.
    """
    if user.two_factor_method is None:
        raise TwoFactorNotEnabled()
    if code is None:
        if user.two_factor_method != EMAIL:
            raise InvalidCode(
                "Send a code from the authenticator app or a backup code."
            )
        await _open(
            session,
            user=user,
            purpose=challenges.DISABLE,
            method=EMAIL,
            origin=origin,
            settings=settings,
        )
        return False

    challenge = await challenges.latest_open(
        session, user_id=user.id, purpose=challenges.DISABLE
    )
    if challenge is None:
        # No code is mailed here, because the caller already has one.
        method = TOTP if user.two_factor_method == TOTP else "backup"
        opened = await challenges.open_challenge(
            session,
            user_id=user.id,
            purpose=challenges.DISABLE,
            method=method,
            secret_key=settings.secret_key(),
        )
        challenge = opened.challenge
    await _pass(
        session,
        user=user,
        challenge=challenge,
        code=code,
        origin=origin,
        settings=settings,
    )
    await _turn_off(session, user=user, origin=origin)
    return True


async def _turn_off(session: AsyncSession, *, user: User, origin: audit.Origin) -> None:
    user.two_factor_method = None
    user.totp_secret = None
    user.totp_pending_secret = None
    user.totp_last_step = None
    await backup_codes.delete_all(session, user_id=user.id)
    await emails.send_two_factor_disabled(session, recipient=user.email)
    await audit.record(
        session, action="two_factor.disabled", origin=origin, actor_user_id=user.id
    )
    log.info("two_factor.disabled", user_id=user.id)


@dataclass(frozen=True)
class Status:
    enabled: bool
    method: str | None
    backup_codes_remaining: int
    pending_method: str | None


async def status(session: AsyncSession, *, user: User) -> Status:
    pending = None
    if user.two_factor_method is None:
        challenge = await challenges.latest_open(
            session, user_id=user.id, purpose=challenges.ENABLE
        )
        pending = challenge.method if challenge else None
    return Status(
        enabled=user.two_factor_method is not None,
        method=user.two_factor_method,
        backup_codes_remaining=await backup_codes.remaining(session, user_id=user.id),
        pending_method=pending,
    )
