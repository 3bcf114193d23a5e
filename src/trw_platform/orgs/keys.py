"""Platform API key format: ``<prefix><base62 body><base62 CRC32 checksum>``.

The checksum lets the server reject a malformed or mistyped key before any
database query, the way secret scanners recognise tokens.
"""

import re
import zlib

from trw_platform.core.security import (
    BASE62_ALPHABET,
    constant_time_equals,
    encode_base62,
    random_base62,
)

LIVE_PREFIX = "trw_live_"
DEVICE_PREFIX = "trw_dk_"
PREFIXES = (LIVE_PREFIX, DEVICE_PREFIX)
BODY_LENGTH = 32
CHECKSUM_LENGTH = 6
HINT_LENGTH = 4

_KEY_PATTERN = re.compile(
    rf"^(?P<prefix>{'|'.join(PREFIXES)})(?P<body>[{BASE62_ALPHABET}]{{{BODY_LENGTH}}})"
    rf"(?P<checksum>[{BASE62_ALPHABET}]{{{CHECKSUM_LENGTH}}})$"
)


def _checksum(prefix: str, body: str) -> str:
    return encode_base62(zlib.crc32(f"{prefix}{body}".encode()), CHECKSUM_LENGTH)


def generate_key(prefix: str = LIVE_PREFIX) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown key prefix {prefix!r}")
    body = random_base62(BODY_LENGTH)
    return f"{prefix}{body}{_checksum(prefix, body)}"


def is_well_formed(key: str) -> bool:
    """Check the shape and checksum of a key without touching the database."""
    match = _KEY_PATTERN.match(key)
    if match is None:
        return False
    expected = _checksum(match["prefix"], match["body"])
    return constant_time_equals(expected, match["checksum"])


def key_hint(key: str) -> str:
    """Return the part of a key that is safe to display: prefix and last chars."""
    prefix = next(p for p in PREFIXES if key.startswith(p))
    return f"{prefix}…{key[-HINT_LENGTH:]}"
