"""Register, resend and reset must not reveal whether an address has an account.

Known and unknown addresses get the same status, body and headers, and take
the same time: the difference of the median times must stay inside the
spread (interquartile range) of the measurements themselves.
"""

import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import empty_tables, make_settings
from tests.factories import make_user
from trw_platform.app import create_app
from trw_platform.auth import passwords

pytestmark = [pytest.mark.anyio, pytest.mark.accounts]

KNOWN = "known@example.com"
UNVERIFIED = "unverified@example.com"
PASSWORD = "a perfectly fine password"
# Headers whose values differ between any two responses.
VOLATILE_HEADERS = {"x-request-id", "content-length"}
# Below this the difference is too small to measure through the network.
FLOOR_SECONDS = 0.002


@pytest.fixture
def real_password_hashing(cheap_password_hashing: None) -> Iterator[None]:
    """Hash with the production argon2 cost, so timings are the real ones."""
    passwords.set_hash_cost(time_cost=3, memory_kib=65536)
    yield
    passwords.set_hash_cost(time_cost=1, memory_kib=1024)


@pytest.fixture
async def unlimited(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(database_url, tmp_path, RATE_LIMIT_ENABLED=False))
    await empty_tables(app)
    async with app.state.sessionmaker() as session:
        await make_user(session, KNOWN, PASSWORD)
        await make_user(session, UNVERIFIED, PASSWORD, verified=False)
    yield app
    await app.state.engine.dispose()


@pytest.fixture
async def http(unlimited: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=unlimited, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


def request_body(route: str, email: str) -> dict[str, str]:
    if route == "register":
        return {"email": email, "password": PASSWORD}
    return {"email": email}


ROUTES = {
    "register": ("/v1/auth/register", KNOWN),
    "resend": ("/v1/auth/resend-verification", UNVERIFIED),
    "reset": ("/v1/auth/request-password-reset", KNOWN),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_known_and_unknown_answer_alike(
    http: httpx.AsyncClient, route: str
) -> None:
    path, known = ROUTES[route]

    for_known = await http.post(path, json=request_body(route, known))
    for_unknown = await http.post(
        path, json=request_body(route, "nobody-here@example.com")
    )

    assert for_known.status_code == 202
    assert for_unknown.status_code == for_known.status_code
    assert for_unknown.content == for_known.content
    known_headers = {k: v for k, v in for_known.headers.items()}
    unknown_headers = {k: v for k, v in for_unknown.headers.items()}
    for name in VOLATILE_HEADERS:
        known_headers.pop(name, None)
        unknown_headers.pop(name, None)
    assert unknown_headers == known_headers


async def timed_post(http: httpx.AsyncClient, path: str, body: dict) -> float:
    started = time.perf_counter()
    response = await http.post(path, json=body)
    elapsed = time.perf_counter() - started
    assert response.status_code == 202
    return elapsed


def interquartile_range(samples: list[float]) -> float:
    quartiles = statistics.quantiles(samples, n=4)
    return quartiles[2] - quartiles[0]


@pytest.mark.parametrize(
    ("route", "rounds"), [("register", 10), ("resend", 10), ("reset", 10)]
)
async def test_known_and_unknown_take_same_time(
    http: httpx.AsyncClient,
    real_password_hashing: None,
    record_property: Callable[[str, object], None],
    route: str,
    rounds: int,
) -> None:
    path, known = ROUTES[route]
    await timed_post(http, path, request_body(route, known))  # warm-up
    known_times: list[float] = []
    unknown_times: list[float] = []

    # Alternate the two, so drift in machine load hits both alike.
    for index in range(rounds):
        unknown = f"nobody-{index}@example.com"
        known_times.append(await timed_post(http, path, request_body(route, known)))
        unknown_times.append(await timed_post(http, path, request_body(route, unknown)))

    difference = abs(statistics.median(known_times) - statistics.median(unknown_times))
    noise = max(interquartile_range(known_times + unknown_times), FLOOR_SECONDS)
    # Shown with: pytest -o junit_family=legacy --junitxml=FILE on this file.
    record_property("median_known_ms", round(statistics.median(known_times) * 1000, 2))
    record_property(
        "median_unknown_ms", round(statistics.median(unknown_times) * 1000, 2)
    )
    record_property("difference_ms", round(difference * 1000, 2))
    record_property("interquartile_range_ms", round(noise * 1000, 2))
    assert difference <= noise, (
        f"{route}: medians differ by {difference * 1000:.2f} ms,"
        f" more than the {noise * 1000:.2f} ms spread"
    )
