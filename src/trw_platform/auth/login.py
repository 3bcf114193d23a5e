"""Password login: throttling, the password check, then a session or a challenge."""

from dataclasses import dataclass
from typing import NoReturn

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth import accounts, passwords, sessions, two_factor
from trw_platform.auth.errors import EmailNotVerified, InvalidCredentials
from trw_platform.auth.models import User
from trw_platform.auth.throttle import LoginThrottle
from trw_platform.core import audit
from trw_platform.core.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LoginOutcome:
    """Exactly one of the two is set."""

    user: User
    tokens: sessions.TokenPair | None = None
    challenge: two_factor.LoginChallenge | None = None


async def login(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    origin: audit.Origin,
    settings: Settings,
    throttle: LoginThrottle,
) -> LoginOutcome:
    """Check a password and start a session or a two-factor challenge.

    Raises RateLimited while the (address, IP) pair is in a delay,
    InvalidCredentials for an unknown address or a wrong password (the same
    error, after the same hashing work), and EmailNotVerified.
    """
    await throttle.check(email, origin.ip)
    user = await accounts.find_user(session, email=email)
    if user is None:
        await passwords.burn_verification(password)
        await _fail(session, throttle, email=email, origin=origin, user=None)
    if not await passwords.verify_password(user.password_hash, password):
        await _fail(session, throttle, email=email, origin=origin, user=user)

    await throttle.clear(email, origin.ip)
    if user.email_verified_at is None:
        await _record(session, "login.unverified", origin, user)
        raise EmailNotVerified()
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash_password(password)
    return await _second_step(session, user=user, origin=origin, settings=settings)


async def _second_step(
    session: AsyncSession, *, user: User, origin: audit.Origin, settings: Settings
) -> LoginOutcome:
    if user.two_factor_method is not None:
        challenge = await two_factor.start_login(
            session, user=user, origin=origin, settings=settings
        )
        await _record(session, "login.two_factor_required", origin, user)
        return LoginOutcome(user=user, challenge=challenge)

    tokens = await sessions.start_session(
        session, user=user, origin=origin, settings=settings
    )
    await _record(session, "login.succeeded", origin, user)
    log.info("login.succeeded", user_id=user.id, session_id=tokens.session_id)
    return LoginOutcome(user=user, tokens=tokens)


async def _fail(
    session: AsyncSession,
    throttle: LoginThrottle,
    *,
    email: str,
    origin: audit.Origin,
    user: User | None,
) -> NoReturn:
    await throttle.record_failure(email, origin.ip)
    reason = "wrong_password" if user else "unknown_email"
    await _record(session, "login.failed", origin, user, reason=reason)
    log.warning("login.failed", user_id=user.id if user else None, reason=reason)
    raise InvalidCredentials()


async def _record(
    session: AsyncSession,
    action: str,
    origin: audit.Origin,
    user: User | None,
    **details: str,
) -> None:
    await audit.record(
        session,
        action=action,
        origin=origin,
        actor_user_id=user.id if user else None,
        details=details,
    )
