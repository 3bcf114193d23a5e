"""Random tokens, base62 and hashing of high-entropy secrets."""

import hashlib
import hmac
import secrets
import string

BASE62_ALPHABET = string.digits + string.ascii_letters


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62_ALPHABET) for _ in range(length))


def encode_base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(BASE62_ALPHABET[remainder])
    return "".join(reversed(digits)).rjust(width, "0")


def hash_token(token: str) -> str:
    """Hash a random secret for storage and lookup.

    Plain SHA-256 fits here because the secrets are long and random; passwords
    need a slow hash instead.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equals(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())
