"""TOTP (RFC 6238) codes from an authenticator app, each accepted only once."""

import time

import pyotp

from trw_platform.auth.challenges import normalize_code
from trw_platform.core.security import constant_time_equals

ISSUER = "trw-platform"
STEP_SECONDS = 30
# One step either side absorbs clock drift between phone and server.
DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, *, account: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def matching_step(secret: str, code: str, *, last_step: int | None) -> int | None:
    """Return the time step the code belongs to, if valid and newer than ``last_step``.

    Refusing steps at or before the last accepted one stops a code from
    being replayed within its 30 seconds.
    """
    code = normalize_code(code)
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(time.time()) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if constant_time_equals(totp.at(step * STEP_SECONDS), code):
            return step
    return None
