"""Two-factor challenges: one pending check, its mailed code and its attempts.

A mailed code has ``CODE_DIGITS`` random digits, is valid for ``CODE_TTL``,
works once, and only for its own challenge: the stored hash is an HMAC of
the challenge id and the code under the server's secret key. A challenge
accepts at most ``MAX_ATTEMPTS`` codes, right or wrong.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth.errors import InvalidCode
from trw_platform.auth.models import TwoFactorChallenge
from trw_platform.core.db import new_id, utc_now
from trw_platform.core.security import constant_time_equals, hash_token

CODE_DIGITS = 8
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5

LOGIN = "login"
ENABLE = "enable"
DISABLE = "disable"


@dataclass(frozen=True)
class OpenedChallenge:
    challenge: TwoFactorChallenge
    # The raw login token, for login challenges only.
    token: str | None
    # The code to mail, for the email method only.
    code: str | None


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def normalize_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _code_hash(secret_key: str, challenge_id: str, code: str) -> str:
    message = f"{challenge_id}:{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


async def open_challenge(
    session: AsyncSession,
    *,
    user_id: str,
    purpose: str,
    method: str,
    secret_key: str,
) -> OpenedChallenge:
    """Create a challenge; for enable and disable it replaces open ones.

    Login challenges do not replace each other, so two sign-ins on two
    devices can run at the same time.
    """
    if purpose != LOGIN:
        await retire_open(session, user_id=user_id, purpose=purpose)
    challenge_id = new_id()
    token = secrets.token_urlsafe(32) if purpose == LOGIN else None
    code = new_code() if method == "email" else None
    challenge = TwoFactorChallenge(
        id=challenge_id,
        user_id=user_id,
        purpose=purpose,
        method=method,
        token_hash=hash_token(token) if token else None,
        code_hash=_code_hash(secret_key, challenge_id, code) if code else None,
        expires_at=utc_now() + CODE_TTL,
    )
    session.add(challenge)
    await session.flush()
    return OpenedChallenge(challenge, token, code)


async def retire_open(session: AsyncSession, *, user_id: str, purpose: str) -> None:
    await session.execute(
        update(TwoFactorChallenge)
        .where(
            TwoFactorChallenge.user_id == user_id,
            TwoFactorChallenge.purpose == purpose,
            TwoFactorChallenge.used_at.is_(None),
        )
        .values(used_at=utc_now())
        .execution_options(synchronize_session=False)
    )


def is_open(challenge: TwoFactorChallenge) -> bool:
    return challenge.used_at is None and challenge.expires_at > utc_now()


async def find_login_challenge(
    session: AsyncSession, *, token: str
) -> TwoFactorChallenge | None:
    challenge = await session.scalar(
        select(TwoFactorChallenge).where(
            TwoFactorChallenge.token_hash == hash_token(token),
            TwoFactorChallenge.purpose == LOGIN,
        )
    )
    if challenge is None or not is_open(challenge):
        return None
    return challenge


async def latest_open(
    session: AsyncSession, *, user_id: str, purpose: str
) -> TwoFactorChallenge | None:
    challenge = await session.scalar(
        select(TwoFactorChallenge)
        .where(
            TwoFactorChallenge.user_id == user_id,
            TwoFactorChallenge.purpose == purpose,
            TwoFactorChallenge.used_at.is_(None),
        )
        .order_by(TwoFactorChallenge.created_at.desc())
        .limit(1)
    )
    if challenge is None or not is_open(challenge):
        return None
    return challenge


async def count_attempt(session: AsyncSession, challenge: TwoFactorChallenge) -> None:
    """Spend one attempt; raises InvalidCode when none are left."""
    if challenge.attempts >= MAX_ATTEMPTS:
        raise InvalidCode(
            f"This challenge had {MAX_ATTEMPTS} attempts and has none left;"
            " start again to get a new code."
        )
    challenge.attempts += 1
    await session.flush()


def mailed_code_matches(
    challenge: TwoFactorChallenge, *, code: str, secret_key: str
) -> bool:
    if challenge.code_hash is None:
        return False
    expected = _code_hash(secret_key, challenge.id, normalize_code(code))
    return constant_time_equals(expected, challenge.code_hash)
