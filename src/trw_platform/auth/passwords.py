"""Password rules and argon2id hashing.

The rules follow NIST SP 800-63B: a length range, no composition rules, and
a check against a list of common passwords that ships with the package.
"""

import asyncio
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from trw_platform.auth.errors import WeakPassword

MIN_LENGTH = 8
MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = "common-passwords.txt"

# argon2-cffi's defaults are the RFC 9106 low-memory profile: argon2id,
# 3 passes over 64 MiB with 4 lanes.
_hasher = PasswordHasher()


def set_hash_cost(*, time_cost: int, memory_kib: int) -> None:
    """Change the argon2 cost for new hashes; tests lower it to run faster."""
    global _hasher
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    _dummy_hash.cache_clear()


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("trw_platform.auth").joinpath(COMMON_PASSWORDS_FILE)
    lines = text.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().lower() for line in lines if line and not line.startswith("#")
    )


def check_password(password: str, *, email: str | None = None) -> None:
    """Raise WeakPassword when the password breaks a rule, naming the rule."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"The password must have at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"The password must have at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if lowered in common_passwords():
        raise WeakPassword(
            "This password is in a list of common passwords; choose another."
        )
    if email and lowered in {email.lower(), email.split("@", 1)[0].lower()}:
        raise WeakPassword("The password must not be the email address.")


# Hashing takes a large part of a second of CPU, so it runs in a worker
# thread instead of stalling the event loop.
async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(_verify, password_hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@cache
def _dummy_hash() -> str:
    return _hasher.hash("not a real password, hashed once for timing")


async def burn_verification(password: str) -> None:
    """Spend the time of one verification, for logins to unknown addresses."""
    await verify_password(_dummy_hash(), password)
