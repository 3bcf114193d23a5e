"""Backup codes: ten single-use second factors, shown once, stored as HMACs.

Each code has 10 characters from a 31-letter alphabet (about 49 bits), so a
keyed hash is enough, and lookups need no slow hashing per stored code.
"""

import hashlib
import hmac
import secrets

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth.challenges import normalize_code
from trw_platform.auth.models import BackupCode
from trw_platform.core.db import utc_now

COUNT = 10
LENGTH = 10
# Lower-case letters and digits without 0/o, 1/l/i, which read alike.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def _hash(secret_key: str, user_id: str, code: str) -> str:
    message = f"backup:{user_id}:{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


async def replace_all(
    session: AsyncSession, *, user_id: str, secret_key: str
) -> list[str]:
    """Delete a user's codes and return ``COUNT`` new ones, shown only now."""
    await delete_all(session, user_id=user_id)
    codes = [_new_code() for _ in range(COUNT)]
    session.add_all(
        BackupCode(
            user_id=user_id, code_hash=_hash(secret_key, user_id, normalize_code(code))
        )
        for code in codes
    )
    await session.flush()
    return codes


async def use(
    session: AsyncSession, *, user_id: str, code: str, secret_key: str
) -> bool:
    """Spend a code; False when it is wrong or already used."""
    code_hash = _hash(secret_key, user_id, normalize_code(code))
    result = await session.execute(
        update(BackupCode)
        .where(
            BackupCode.user_id == user_id,
            BackupCode.code_hash == code_hash,
            BackupCode.used_at.is_(None),
        )
        .values(used_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def remaining(session: AsyncSession, *, user_id: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(BackupCode)
        .where(BackupCode.user_id == user_id, BackupCode.used_at.is_(None))
    )
    return count or 0


async def delete_all(session: AsyncSession, *, user_id: str) -> None:
    await session.execute(delete(BackupCode).where(BackupCode.user_id == user_id))
