"""Named rate-limit policies over the ``limits`` package.

Counters live in the worker's memory by default, or in Redis when
``TRW_SERVER_REDIS_URL`` is set so that every worker shares them. Each checked
policy leaves its result on the request. The request middleware then turns
the tightest one into ``RateLimit-Policy``, ``RateLimit`` and
``X-RateLimit-*`` headers on the response, errors included.
"""

import math
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from trw_platform.core.errors import RateLimited
from trw_platform.core.settings import Settings

log = structlog.get_logger(__name__)

STATE_KEY = "rate_limits"
STORAGE_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Policy:
    name: str
    item: RateLimitItem

    @property
    def window_seconds(self) -> int:
        return int(self.item.get_expiry())


@dataclass(frozen=True)
class Outcome:
    policy: Policy
    remaining: int
    reset_seconds: int
    allowed: bool


class RateLimiter:
    """Check named policies against one shared counter storage."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.RATE_LIMIT_ENABLED
        self._pool = _create_pool(settings.REDIS_URL)
        self.storage = _create_storage(settings.REDIS_URL, self._pool)
        self._limiter = FixedWindowRateLimiter(self.storage)
        self.policies = {
            "default": Policy("default", parse(settings.RATE_LIMIT_DEFAULT)),
            "telemetry": Policy("telemetry", parse(settings.RATE_LIMIT_TELEMETRY)),
            "ip": Policy("ip", parse(settings.RATE_LIMIT_IP)),
            "auth": Policy("auth", parse(settings.RATE_LIMIT_AUTH)),
            "account_mail": Policy(
                "account_mail", parse(settings.RATE_LIMIT_ACCOUNT_MAIL)
            ),
            "device_code": Policy(
                "device_code", parse(settings.RATE_LIMIT_DEVICE_CODE)
            ),
        }
        self._failed_at: float | None = None

    async def check(
        self, scope: MutableMapping[str, Any], policy_name: str, identity: str
    ) -> None:
        """Count one request for ``identity`` and raise RateLimited when over."""
        if not self.enabled:
            return

        policy = self.policies[policy_name]
        outcome = await self._hit(policy, identity)
        if outcome is None:
            return

        scope.setdefault("state", {}).setdefault(STATE_KEY, []).append(outcome)
        if not outcome.allowed:
            log.warning(
                "rate_limit.exceeded",
                policy=policy.name,
                retry_after=outcome.reset_seconds,
            )
            raise RateLimited(retry_after=outcome.reset_seconds)

    async def _hit(self, policy: Policy, identity: str) -> Outcome | None:
        # NOTE: a counter store that is down must not take the API down with
        # it: requests go through uncounted, the failure is logged once, and
        # the store is tried again only after a pause.
        now = time.monotonic()
        if (
            self._failed_at is not None
            and now - self._failed_at < STORAGE_RETRY_SECONDS
        ):
            return None
        try:
            allowed = await self._limiter.hit(policy.item, policy.name, identity)
            stats = await self._limiter.get_window_stats(
                policy.item, policy.name, identity
            )
        except Exception:
            if self._failed_at is None:
                log.exception("rate_limit.storage_failed", policy=policy.name)
            self._failed_at = now
            return None

        if self._failed_at is not None:
            log.info("rate_limit.storage_recovered")
            self._failed_at = None
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return Outcome(policy, stats.remaining, reset, allowed)

    async def reset(self) -> None:
        await self.storage.reset()

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def _create_pool(redis_url: str) -> ConnectionPool | None:
    if not redis_url:
        return None
    # Short timeouts: while Redis is down, each request waits at most this
    # long before it is let through without a count.
    return ConnectionPool.from_url(
        redis_url,
        socket_connect_timeout=0.25,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), retries=0),
    )


def _create_storage(redis_url: str, pool: ConnectionPool | None) -> Storage:
    if pool is None:
        return MemoryStorage()
    return RedisStorage(
        f"async+{redis_url}",
        implementation="redispy",
        connection_pool=pool,  # type: ignore[arg-type]
    )


def rate_limit_headers(outcomes: list[Outcome]) -> list[tuple[bytes, bytes]]:
    """Render the tightest outcome as IETF draft and X-RateLimit headers."""
    if not outcomes:
        return []

    tightest = min(outcomes, key=lambda outcome: outcome.remaining)
    policy = tightest.policy
    quota = policy.item.amount
    remaining, reset = tightest.remaining, tightest.reset_seconds
    values = {
        "RateLimit-Policy": f'"{policy.name}";q={quota};w={policy.window_seconds}',
        "RateLimit": f'"{policy.name}";r={remaining};t={reset}',
        "X-RateLimit-Limit": str(quota),
        "X-RateLimit-Remaining": str(tightest.remaining),
        "X-RateLimit-Reset": str(tightest.reset_seconds),
    }
    return [(name.lower().encode(), value.encode()) for name, value in values.items()]
