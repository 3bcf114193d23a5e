"""Named rate-limit policies over the ``limits`` package.

Counters live in the worker's memory by default, or in Redis when
``TRW_SERVER_REDIS_URL`` is set so that every worker shares them. Each checked
policy leaves its result on the request; the request middleware turns the
tightest one into ``RateLimit-Policy``, ``RateLimit`` and ``X-RateLimit-*``
headers on the response, errors included.
"""

import math
import time
from dataclasses import dataclass
from typing import Any

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter

from trw_platform.core.errors import RateLimited
from trw_platform.core.settings import Settings

log = structlog.get_logger(__name__)

STATE_KEY = "rate_limits"


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
        self.storage = _create_storage(settings.REDIS_URL)
        self._limiter = FixedWindowRateLimiter(self.storage)
        self.policies = {
            "default": Policy("default", parse(settings.RATE_LIMIT_DEFAULT)),
            "telemetry": Policy("telemetry", parse(settings.RATE_LIMIT_TELEMETRY)),
            "ip": Policy("ip", parse(settings.RATE_LIMIT_IP)),
            "auth": Policy("auth", parse(settings.RATE_LIMIT_AUTH)),
        }
        self._storage_failing = False

    async def check(
        self, scope: dict[str, Any], policy_name: str, identity: str
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
        try:
            allowed = await self._limiter.hit(policy.item, policy.name, identity)
            stats = await self._limiter.get_window_stats(
                policy.item, policy.name, identity
            )
        except Exception:
            # NOTE: a counter store that is down must not take the API down with
            # it, so the request is let through and the failure logged once
            # until the store answers again.
            if not self._storage_failing:
                log.exception("rate_limit.storage_failed", policy=policy.name)
            self._storage_failing = True
            return None

        if self._storage_failing:
            log.info("rate_limit.storage_recovered")
            self._storage_failing = False
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return Outcome(policy, stats.remaining, reset, allowed)

    async def reset(self) -> None:
        await self.storage.reset()


def _create_storage(redis_url: str) -> Storage:
    if not redis_url:
        return MemoryStorage()
    return RedisStorage(f"async+{redis_url}", implementation="redispy")


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
