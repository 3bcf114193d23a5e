"""Sign-in sessions: short-lived access JWTs and rotating refresh tokens.

Each login starts a session, the family of refresh tokens that rotate from
it. A refresh token works once; presenting a used one again means it was
copied, so the whole session is revoked. Access tokens carry the session id
and are rejected once the session is revoked or the user's
``tokens_not_before`` has passed their issue time.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth import tokens
from trw_platform.auth.errors import InvalidRefreshToken
from trw_platform.auth.models import RefreshToken, User, UserSession
from trw_platform.core import audit
from trw_platform.core.db import utc_now
from trw_platform.core.security import hash_token
from trw_platform.core.settings import Settings

log = structlog.get_logger(__name__)

ACCESS_TOKEN = "access"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: str


@dataclass(frozen=True)
class SignedIn:
    user: User
    session_id: str


async def start_session(
    session: AsyncSession, *, user: User, origin: audit.Origin, settings: Settings
) -> TokenPair:
    """Start a session for a user who has passed every sign-in check."""
    now = utc_now()
    user_session = UserSession(
        user_id=user.id,
        expires_at=now + timedelta(seconds=settings.REFRESH_TOKEN_TTL_SECONDS),
        last_used_at=now,
        ip=origin.ip,
        user_agent=origin.user_agent,
    )
    session.add(user_session)
    await session.flush()
    log.info("session.started", user_id=user.id, session_id=user_session.id)
    return await _issue_pair(session, user_session, settings)


async def _issue_pair(
    session: AsyncSession, user_session: UserSession, settings: Settings
) -> TokenPair:
    raw_refresh = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(session_id=user_session.id, token_hash=hash_token(raw_refresh))
    )
    await session.flush()
    ttl = settings.ACCESS_TOKEN_TTL_SECONDS
    access = tokens.issue_token(
        settings.secret_key(),
        subject=user_session.user_id,
        token_type=ACCESS_TOKEN,
        ttl=timedelta(seconds=ttl),
        # JWT "iat" has whole seconds; the cutoff needs finer issue times.
        claims={"sid": user_session.id, "iat_us": _microseconds(utc_now())},
    )
    remaining = user_session.expires_at - utc_now()
    return TokenPair(
        access_token=access,
        expires_in=ttl,
        refresh_token=raw_refresh,
        refresh_expires_in=max(0, int(remaining.total_seconds())),
        session_id=user_session.id,
    )


async def refresh(
    session: AsyncSession, *, raw_token: str, origin: audit.Origin, settings: Settings
) -> TokenPair:
    """Rotate a refresh token; raises InvalidRefreshToken.

    A token that was already used revokes its session before the error, and
    that revocation is committed with the error response.
    """
    found = await session.execute(
        select(RefreshToken, UserSession)
        .join(UserSession, RefreshToken.session_id == UserSession.id)
        .where(RefreshToken.token_hash == hash_token(raw_token))
    )
    row = found.one_or_none()
    if row is None:
        raise InvalidRefreshToken()
    token, user_session = row
    if not _is_live(user_session):
        raise InvalidRefreshToken()

    if not await _mark_used(session, token):
        await _revoke_reused(session, user_session, origin)
        raise InvalidRefreshToken()
    user_session.last_used_at = utc_now()
    return await _issue_pair(session, user_session, settings)


async def _mark_used(session: AsyncSession, token: RefreshToken) -> bool:
    # Conditional update: of two requests racing with one token, one wins
    # and the other counts as reuse.
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .values(used_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def _revoke_reused(
    session: AsyncSession, user_session: UserSession, origin: audit.Origin
) -> None:
    user_session.revoked_at = utc_now()
    user_session.revoked_reason = "refresh_reuse"
    await session.flush()
    await audit.record(
        session,
        action="session.refresh_reused",
        origin=origin,
        actor_user_id=user_session.user_id,
        subject_id=user_session.id,
    )
    log.warning(
        "session.refresh_reused",
        user_id=user_session.user_id,
        session_id=user_session.id,
    )


def _is_live(user_session: UserSession) -> bool:
    return user_session.revoked_at is None and user_session.expires_at > utc_now()


async def authenticate(
    session: AsyncSession, *, settings: Settings, access_token: str
) -> SignedIn | None:
    """Return the signed-in user of a valid access token, else None."""
    claims = tokens.decode_token(
        settings.secret_key(), access_token, token_type=ACCESS_TOKEN
    )
    if claims is None or not isinstance(claims.get("sid"), str):
        return None

    found = await session.execute(
        select(UserSession, User)
        .join(User, UserSession.user_id == User.id)
        .where(UserSession.id == claims["sid"], User.id == claims["sub"])
    )
    row = found.one_or_none()
    if row is None:
        return None
    user_session, user = row
    if not _is_live(user_session) or not _issued_after_cutoff(user, claims):
        return None
    return SignedIn(user=user, session_id=user_session.id)


def _microseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _issued_after_cutoff(user: User, claims: dict[str, object]) -> bool:
    if user.tokens_not_before is None:
        return True
    issued_at = claims.get("iat_us")
    return isinstance(issued_at, int) and issued_at >= _microseconds(
        user.tokens_not_before
    )


async def end_session(session: AsyncSession, *, session_id: str, reason: str) -> None:
    await session.execute(
        update(UserSession)
        .where(UserSession.id == session_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utc_now(), revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )


async def end_all_sessions(
    session: AsyncSession, *, user: User, reason: str, keep_session_id: str | None
) -> None:
    """Revoke every session of a user but ``keep_session_id``.

    Also moves the user's token cutoff to now, so every access token issued
    so far fails. The caller gives the kept session a fresh pair.
    """
    query = update(UserSession).where(
        UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
    )
    if keep_session_id is not None:
        query = query.where(UserSession.id != keep_session_id)
    await session.execute(
        query.values(revoked_at=utc_now(), revoked_reason=reason).execution_options(
            synchronize_session=False
        )
    )
    user.tokens_not_before = utc_now()
    await session.flush()
    log.info("session.all_ended", user_id=user.id, reason=reason)


async def reissue(
    session: AsyncSession, *, session_id: str, settings: Settings
) -> TokenPair:
    """Issue a fresh pair for a live session, retiring its unused tokens."""
    user_session = await session.get_one(UserSession, session_id)
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.session_id == session_id, RefreshToken.used_at.is_(None))
        .values(used_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    return await _issue_pair(session, user_session, settings)


async def logout(
    session: AsyncSession,
    *,
    signed_in: SignedIn,
    all_sessions: bool,
    origin: audit.Origin,
) -> None:
    """End the caller's session, or with ``all_sessions`` every session."""
    if all_sessions:
        await end_all_sessions(
            session, user=signed_in.user, reason="logout_all", keep_session_id=None
        )
    else:
        await end_session(session, session_id=signed_in.session_id, reason="logout")
    await audit.record(
        session,
        action="session.logged_out",
        origin=origin,
        actor_user_id=signed_in.user.id,
        subject_id=signed_in.session_id,
        details={"all_sessions": all_sessions},
    )
