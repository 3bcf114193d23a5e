"""Accounts: registration, email verification and passwords.

Register, resend-verification and request-password-reset must not reveal
whether an address has an account. Both paths do the same hashing and write
an audit row, the router returns one fixed message, and it delays each
response to a minimum duration that covers the token and mail work that
only known addresses cause.
"""

from urllib.parse import urlencode

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth import emails, link_tokens, passwords, sessions
from trw_platform.auth.errors import InvalidCurrentPassword
from trw_platform.auth.models import User
from trw_platform.core import audit
from trw_platform.core.db import utc_now
from trw_platform.core.settings import Settings
from trw_platform.orgs import memberships

log = structlog.get_logger(__name__)


async def find_user(session: AsyncSession, *, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


def page_link(base_url: str, page: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/{page}?{urlencode({'token': token})}"


async def register(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    origin: audit.Origin,
    base_url: str,
) -> None:
    """Create an account and its organization, or mail the existing owner.

    Raises WeakPassword before any other work, for known and unknown
    addresses alike.
    """
    passwords.check_password(password, email=email)
    password_hash = await passwords.hash_password(password)
    existing = await find_user(session, email=email)
    if existing is None:
        user = await _insert_user(session, email=email, password_hash=password_hash)
        if user is not None:
            await _welcome(session, user=user, origin=origin, base_url=base_url)
            return
        existing = await find_user(session, email=email)
        assert existing is not None

    await emails.send_already_registered(session, recipient=email)
    await audit.record(
        session,
        action="user.register_existing",
        origin=origin,
        actor_user_id=existing.id,
    )


async def _insert_user(
    session: AsyncSession, *, email: str, password_hash: str
) -> User | None:
    # A concurrent registration of the same address loses the race on the
    # unique constraint and takes the existing-address path.
    user = User(email=email, password_hash=password_hash)
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError:
        return None
    return user


async def _welcome(
    session: AsyncSession, *, user: User, origin: audit.Origin, base_url: str
) -> None:
    organization = await memberships.create_personal_organization(
        session, user_id=user.id, email=user.email
    )
    await _send_verification(session, user=user, base_url=base_url)
    await audit.record(
        session,
        action="user.registered",
        origin=origin,
        actor_user_id=user.id,
        organization_id=organization.id,
    )
    log.info("user.registered", user_id=user.id, organization_id=organization.id)


async def _send_verification(
    session: AsyncSession, *, user: User, base_url: str
) -> None:
    raw_token = await link_tokens.issue(
        session, user_id=user.id, purpose=link_tokens.VERIFY_EMAIL
    )
    await emails.send_verification(
        session,
        recipient=user.email,
        link=page_link(base_url, "verify-email", raw_token),
        hours=link_tokens.lifetime_seconds(link_tokens.VERIFY_EMAIL) // 3600,
    )


async def verify_email(
    session: AsyncSession, *, raw_token: str, origin: audit.Origin
) -> User:
    """Mark the address of the token's user verified; raises InvalidLinkToken."""
    token = await link_tokens.find_open(
        session, raw_token=raw_token, purpose=link_tokens.VERIFY_EMAIL
    )
    await link_tokens.use(session, token)
    user = await session.get_one(User, token.user_id)
    if user.email_verified_at is None:
        user.email_verified_at = utc_now()
    await audit.record(
        session, action="user.email_verified", origin=origin, actor_user_id=user.id
    )
    log.info("user.email_verified", user_id=user.id)
    return user


async def resend_verification(
    session: AsyncSession, *, email: str, origin: audit.Origin, base_url: str
) -> None:
    """Mail a new verification link if the address has an unverified account."""
    user = await find_user(session, email=email)
    if user is not None and user.email_verified_at is None:
        await _send_verification(session, user=user, base_url=base_url)
    else:
        link_tokens.decoy()
    await audit.record(
        session,
        action="user.verification_requested",
        origin=origin,
        actor_user_id=user.id if user else None,
    )


async def request_password_reset(
    session: AsyncSession, *, email: str, origin: audit.Origin, base_url: str
) -> None:
    """Mail a reset link if the address has an account."""
    user = await find_user(session, email=email)
    if user is not None:
        raw_token = await link_tokens.issue(
            session, user_id=user.id, purpose=link_tokens.RESET_PASSWORD
        )
        await emails.send_password_reset(
            session,
            recipient=user.email,
            link=page_link(base_url, "reset-password", raw_token),
            minutes=link_tokens.lifetime_seconds(link_tokens.RESET_PASSWORD) // 60,
        )
    else:
        link_tokens.decoy()
    await audit.record(
        session,
        action="user.password_reset_requested",
        origin=origin,
        actor_user_id=user.id if user else None,
    )


async def reset_password(
    session: AsyncSession, *, raw_token: str, password: str, origin: audit.Origin
) -> User:
    """Set a new password from a reset link and end every session.

    The link proves the mailbox, so it also verifies the address. Raises
    InvalidLinkToken or WeakPassword; a weak password leaves the link usable.
    """
    token = await link_tokens.find_open(
        session, raw_token=raw_token, purpose=link_tokens.RESET_PASSWORD
    )
    user = await session.get_one(User, token.user_id)
    passwords.check_password(password, email=user.email)
    await link_tokens.use(session, token)

    user.password_hash = await passwords.hash_password(password)
    user.email_verified_at = user.email_verified_at or utc_now()
    await sessions.end_all_sessions(
        session, user=user, reason="password_reset", keep_session_id=None
    )
    await emails.send_password_changed(session, recipient=user.email)
    await audit.record(
        session, action="user.password_reset", origin=origin, actor_user_id=user.id
    )
    return user


async def change_password(
    session: AsyncSession,
    *,
    signed_in: sessions.SignedIn,
    current_password: str,
    new_password: str,
    origin: audit.Origin,
    settings: Settings,
) -> sessions.TokenPair:
    """Replace the password, end the other sessions and re-issue this one's tokens."""
    user = signed_in.user
    if not await passwords.verify_password(user.password_hash, current_password):
        raise InvalidCurrentPassword()
    passwords.check_password(new_password, email=user.email)

    user.password_hash = await passwords.hash_password(new_password)
    await sessions.end_all_sessions(
        session,
        user=user,
        reason="password_changed",
        keep_session_id=signed_in.session_id,
    )
    await emails.send_password_changed(session, recipient=user.email)
    await audit.record(
        session, action="user.password_changed", origin=origin, actor_user_id=user.id
    )
    return await sessions.reissue(
        session, session_id=signed_in.session_id, settings=settings
    )
