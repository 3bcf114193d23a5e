"""Rate limiting: headers on every response, 429s, and counters shared in Redis."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis_asyncio
from fastapi import FastAPI

from tests.conftest import close_app, empty_tables, make_settings
from tests.core.test_app import assert_envelope
from tests.factories import make_org_with_key
from trw_platform.app import create_app

pytestmark = pytest.mark.anyio

REDIS_URL = "redis://127.0.0.1:6379/15"
RATE_HEADERS = (
    "ratelimit-policy",
    "ratelimit",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)


def http_client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def strict_app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        database_url,
        tmp_path,
        RATE_LIMIT_DEFAULT="3/minute",
        RATE_LIMIT_IP="1000/minute",
    )
    app = create_app(settings)
    await empty_tables(app)
    yield app
    await close_app(app)


async def test_headers_on_success_and_error(client: httpx.AsyncClient) -> None:
    ok = await client.get("/v1/health")
    missing = await client.get("/v1/nowhere")

    for response in (ok, missing):
        for name in RATE_HEADERS:
            assert name in response.headers, name
    assert ok.headers["ratelimit-policy"] == '"ip";q=1200;w=60'
    assert ok.headers["ratelimit"].startswith('"ip";r=1199;t=')


async def test_key_policy_returns_429_with_retry_after(strict_app: FastAPI) -> None:
    async with strict_app.state.sessionmaker() as db:
        org = await make_org_with_key(db)

    async with http_client(strict_app) as http:
        statuses = [
            (await http.get("/v1/telemetry/stats", headers=org.headers)).status_code
            for _ in range(3)
        ]
        limited = await http.get("/v1/telemetry/stats", headers=org.headers)

    assert statuses == [200, 200, 200]
    assert_envelope(limited, 429, "rate_limited")
    assert limited.headers["retry-after"].isdigit()
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["ratelimit-policy"] == '"default";q=3;w=60'


async def test_limits_are_per_key(strict_app: FastAPI) -> None:
    async with strict_app.state.sessionmaker() as db:
        first = await make_org_with_key(db, "First")
        second = await make_org_with_key(db, "Second")

    async with http_client(strict_app) as http:
        for _ in range(4):
            await http.get("/v1/telemetry/stats", headers=first.headers)
        other = await http.get("/v1/telemetry/stats", headers=second.headers)

    assert other.status_code == 200


async def test_ip_policy_limits_unauthenticated(
    database_url: str, tmp_path: Path
) -> None:
    app = create_app(make_settings(database_url, tmp_path, RATE_LIMIT_IP="2/minute"))
    async with http_client(app) as http:
        statuses = [(await http.get("/v1/health")).status_code for _ in range(3)]
    await close_app(app)

    assert statuses == [200, 200, 429]


async def test_failed_auth_throttled_per_ip(database_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(database_url, tmp_path, RATE_LIMIT_AUTH="2/minute"))
    headers = {"Authorization": "Bearer trw_live_" + "a" * 38}
    async with http_client(app) as http:
        statuses = [
            (await http.get("/v1/telemetry/stats", headers=headers)).status_code
            for _ in range(3)
        ]
    await close_app(app)

    assert statuses == [401, 401, 429]


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    client = redis_asyncio.from_url(REDIS_URL)
    try:
        await client.ping()
    except redis_asyncio.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    yield uuid.uuid4().hex
    await client.flushdb()
    await client.aclose()


async def test_redis_counters_shared_between_workers(
    database_url: str, tmp_path: Path, redis_prefix: str
) -> None:
    # Two app instances stand in for two worker processes sharing one Redis.
    limit = "3/minute"
    workers = [
        create_app(
            make_settings(
                database_url, tmp_path, REDIS_URL=REDIS_URL, RATE_LIMIT_IP=limit
            )
        )
        for _ in range(2)
    ]
    await workers[0].state.limiter.reset()
    async with http_client(workers[0]) as first, http_client(workers[1]) as second:
        statuses = [
            (await first.get("/v1/health")).status_code,
            (await second.get("/v1/health")).status_code,
            (await first.get("/v1/health")).status_code,
            (await second.get("/v1/health")).status_code,
        ]
    for app in workers:
        await close_app(app)

    assert statuses == [200, 200, 200, 429]


async def test_unreachable_redis_lets_requests_through(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    app = create_app(settings)
    async with http_client(app) as http:
        response = await http.get("/v1/health")
    await close_app(app)

    assert response.status_code == 200
    assert "x-ratelimit-limit" not in response.headers
