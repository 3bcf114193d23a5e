"""Growing delays after failed logins, per account and client IP.

After ``free_failures`` failures of one (address, IP) pair, each further
failure blocks that pair for 1, 2, 4, ... seconds, up to ``max_delay``; a
successful login clears the count. The key holds the IP, so failures from
one network never delay the account's owner on another: there
is no lockout that a stranger can trigger against a victim.

Counters live in the rate limiter's storage (worker memory, or Redis shared
by every worker).
"""

import hashlib
import math
import time

import structlog
from limits.aio.storage import Storage

from trw_platform.core.errors import RateLimited

log = structlog.get_logger(__name__)

# How long a run of failures is remembered, counted from its first failure.
FAILURE_WINDOW_SECONDS = 24 * 3600


class LoginThrottle:
    def __init__(self, storage: Storage, *, free_failures: int, max_delay: int) -> None:
        self.storage = storage
        self.free_failures = free_failures
        self.max_delay = max_delay

    @staticmethod
    def _key(email: str, ip: str | None) -> str:
        # Hashed so that neither the address nor the IP sits in Redis as is.
        digest = hashlib.sha256(f"{email}\n{ip or '-'}".encode()).hexdigest()
        return digest[:32]

    async def check(self, email: str, ip: str | None) -> None:
        """Raise RateLimited while the pair is in a delay."""
        key = self._key(email, ip)
        try:
            blocked = await self.storage.get(f"login_block/{key}")
            expiry = await self.storage.get_expiry(f"login_block/{key}")
        except Exception:
            log.exception("login_throttle.storage_failed")
            return
        if blocked > 0:
            retry_after = max(1, math.ceil(expiry - time.time()))
            log.warning("login_throttle.blocked", retry_after=retry_after)
            raise RateLimited(
                retry_after,
                detail="Too many failed logins for this account from this "
                f"address; retry after {retry_after} seconds.",
            )

    async def record_failure(self, email: str, ip: str | None) -> None:
        key = self._key(email, ip)
        try:
            failures = await self.storage.incr(
                f"login_failures/{key}", FAILURE_WINDOW_SECONDS
            )
            if failures > self.free_failures:
                exponent = failures - self.free_failures - 1
                delay = min(2**exponent, self.max_delay)
                await self.storage.incr(f"login_block/{key}", delay)
        except Exception:
            log.exception("login_throttle.storage_failed")

    async def clear(self, email: str, ip: str | None) -> None:
        key = self._key(email, ip)
        try:
            await self.storage.clear(f"login_failures/{key}")
        except Exception:
            log.exception("login_throttle.storage_failed")
