"""Two workers on PostgreSQL and Redis behave as one server.

``trw-platform serve --workers 2`` runs against a fresh PostgreSQL database
and the local Redis. Concurrent telemetry batches through both workers are
all counted once, and the rate-limit counters are shared between workers.
"""

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.databases import migrated_database
from tests.e2e.live import serve

pytestmark = pytest.mark.e2e

REDIS_URL = "redis://127.0.0.1:6379/14"
KEY_LIMIT = 40


@pytest.fixture(scope="module")
def scaled_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("scaled")
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings = {
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": uuid.uuid4().hex * 2,
        "RATE_LIMIT_DEFAULT": f"{KEY_LIMIT}/minute",
    }
    with (
        migrated_database("postgresql", folder) as database_url,
        serve(
            folder, "--workers", "2", DATABASE_URL=database_url, **settings
        ) as server,
    ):
        yield server.url, server.first_key
    redis.Redis.from_url(REDIS_URL).flushdb()


async def post_batches(url: str, key: str, batches: int) -> list[dict]:
    headers = {"Authorization": f"Bearer {key}"}

    # A new connection per request spreads the load over both workers.
    async def send(batch: int) -> dict:
        events = [
            {"event_id": f"b{batch}-e{index}", "event_type": "tool_invocation",
             "tool_name": f"tool_{index % 3}", "installation_id": f"{batch % 4:016x}"}
            for index in range(100)
        ]  # fmt: skip
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            response = await http.post("/v1/telemetry", json={"events": events})
            response.raise_for_status()
            return response.json()

    return await asyncio.gather(*(send(batch) for batch in range(batches)))


def test_concurrent_batches_counted_once(scaled_server: tuple[str, str]) -> None:
    url, key = scaled_server

    first = asyncio.run(post_batches(url, key, 20))
    replay = asyncio.run(post_batches(url, key, 20))
    stats = httpx.get(
        f"{url}/v1/telemetry/stats", headers={"Authorization": f"Bearer {key}"}
    )
    installations = httpx.get(
        f"{url}/v1/installations", headers={"Authorization": f"Bearer {key}"}
    )

    assert sum(result["accepted"] for result in first) == 2000
    assert sum(result["duplicates"] for result in replay) == 2000
    assert stats.json()["total"] == 2000
    assert stats.json()["by_tool"] == {"tool_0": 680, "tool_1": 660, "tool_2": 660}
    assert installations.json()["total"] == 4
    assert sum(item["event_count"] for item in installations.json()["items"]) == 2000


def test_rate_limit_shared_between_workers(scaled_server: tuple[str, str]) -> None:
    url, key = scaled_server
    headers = {"Authorization": f"Bearer {key}"}

    # Fresh connections, so requests land on both workers.
    statuses = [
        httpx.get(
            f"{url}/v1/telemetry/events", params={"limit": 1}, headers=headers
        ).status_code
        for _ in range(KEY_LIMIT + 5)
    ]

    assert statuses.count(429) >= 5
    assert statuses.index(429) <= KEY_LIMIT
