"""Single-use tokens sent in mail links: email verification and password reset."""

import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth.errors import InvalidLinkToken
from trw_platform.auth.models import EmailToken
from trw_platform.core.db import utc_now
from trw_platform.core.security import hash_token

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
LIFETIMES = {
    VERIFY_EMAIL: timedelta(hours=24),
    RESET_PASSWORD: timedelta(hours=1),
}


def lifetime_seconds(purpose: str) -> int:
    return int(LIFETIMES[purpose].total_seconds())


async def issue(session: AsyncSession, *, user_id: str, purpose: str) -> str:
    """Create a token and return its raw value; older open ones stop working."""
    now = utc_now()
    await session.execute(
        update(EmailToken)
        .where(
            EmailToken.user_id == user_id,
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    raw_token = secrets.token_urlsafe(32)
    session.add(
        EmailToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=hash_token(raw_token),
            expires_at=now + LIFETIMES[purpose],
        )
    )
    await session.flush()
    return raw_token


def decoy() -> str:
    """Do the work of ``issue`` without storing, for addresses with no account."""
    return hash_token(secrets.token_urlsafe(32))


async def find_open(
    session: AsyncSession, *, raw_token: str, purpose: str
) -> EmailToken:
    """Return an unused, unexpired token; raises InvalidLinkToken."""
    token = await session.scalar(
        select(EmailToken).where(
            EmailToken.token_hash == hash_token(raw_token),
            EmailToken.purpose == purpose,
        )
    )
    if token is None or token.used_at is not None or token.expires_at <= utc_now():
        raise InvalidLinkToken()
    return token


async def use(session: AsyncSession, token: EmailToken) -> None:
    """Mark a token used; raises InvalidLinkToken if another request was first."""
    result = await session.execute(
        update(EmailToken)
        .where(EmailToken.id == token.id, EmailToken.used_at.is_(None))
        .values(used_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidLinkToken()
