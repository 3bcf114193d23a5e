"""Login, access and refresh tokens, logout, and throttling of failed logins."""

from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import bearer, fetch_all, login, sign_in
from tests.conftest import TEST_SECRET, make_settings
from tests.core.test_app import assert_envelope
from tests.factories import make_org_with_key, make_user
from trw_platform.app import create_app
from trw_platform.auth import tokens
from trw_platform.auth.models import RefreshToken, UserSession
from trw_platform.core.audit import AuditEvent
from trw_platform.core.db import utc_now

pytestmark = [pytest.mark.anyio, pytest.mark.accounts]

EMAIL = "ada@example.com"


async def audit_actions(app: FastAPI) -> list[str]:
    events = await fetch_all(app, select(AuditEvent).order_by(AuditEvent.occurred_at))
    return [event.action for event in events]


async def test_login_returns_token_pair(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)

    response = await login(client, "ADA@example.com", account.password)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["refresh_expires_in"] > 29 * 24 * 3600
    claims = jwt.decode(body["access_token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == account.user.id
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 900
    stored = await fetch_all(app, select(RefreshToken))
    assert body["refresh_token"] not in {token.token_hash for token in stored}
    events = await fetch_all(app, select(AuditEvent))
    succeeded = [e for e in events if e.action == "login.succeeded"]
    assert succeeded[0].actor_user_id == account.user.id
    assert succeeded[0].ip == "127.0.0.1"
    assert succeeded[0].request_id == response.headers["x-request-id"]


async def test_me_lists_owned_organization(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    pair = await sign_in(client, EMAIL, account.password)

    response = await client.get("/v1/auth/me", headers=bearer(pair["access_token"]))

    assert response.status_code == 200
    body = response.json()
    assert body["email"] == EMAIL
    assert body["email_verified"] is True
    assert body["organizations"] == [
        {
            "organization_id": account.organization.id,
            "organization_name": account.organization.name,
            "organization_slug": account.organization.slug,
            "role": "owner",
        }
    ]


@pytest.mark.parametrize(
    ("email", "password"),
    [(EMAIL, "wrong password here"), ("nobody@example.com", "whatever it is")],
)
async def test_login_failure_says_only_invalid(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    email: str,
    password: str,
) -> None:
    await make_user(db, EMAIL)

    response = await login(client, email, password)

    body = assert_envelope(response, 401, "invalid_credentials")
    assert body["detail"] == "invalid email or password"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "login.failed" in await audit_actions(app)


async def test_login_rejects_invalid_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/login", json={"email": EMAIL})

    body = assert_envelope(response, 422, "validation_error")
    assert body["detail"][0]["loc"] == ["body", "password"]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Basic abc", "Bearer not-a-jwt", "Bearer trw_live_abc"],
)
async def test_me_rejects_bad_credentials(
    client: httpx.AsyncClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}

    response = await client.get("/v1/auth/me", headers=headers)

    assert_envelope(response, 401, "unauthorized")
    assert "www-authenticate" in response.headers


async def test_api_key_jwt_is_not_a_user_token(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org_with_key(db)
    exchanged = await client.post("/v1/auth/token", json={"api_key": org.raw_key})

    response = await client.get(
        "/v1/auth/me", headers=bearer(exchanged.json()["access_token"])
    )

    assert exchanged.status_code == 200
    assert_envelope(response, 401, "unauthorized")


async def test_expired_access_token_rejected(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    pair = await sign_in(client, EMAIL, account.password)
    claims = jwt.decode(pair["access_token"], TEST_SECRET, algorithms=["HS256"])
    expired = tokens.issue_token(
        TEST_SECRET,
        subject=claims["sub"],
        token_type="access",
        ttl=timedelta(seconds=-1),
        claims={"sid": claims["sid"], "iat_us": claims["iat_us"]},
    )

    response = await client.get("/v1/auth/me", headers=bearer(expired))

    assert_envelope(response, 401, "unauthorized")


async def test_refresh_rotates_tokens(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    pair = await sign_in(client, EMAIL, account.password)

    first = await client.post(
        "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    second = await client.post(
        "/v1/auth/refresh", json={"refresh_token": first.json()["refresh_token"]}
    )

    assert first.status_code == 200
    assert second.status_code == 200
    assert first.json()["refresh_token"] != pair["refresh_token"]
    assert second.json()["refresh_token"] != first.json()["refresh_token"]
    me = await client.get("/v1/auth/me", headers=bearer(second.json()["access_token"]))
    assert me.status_code == 200


async def test_refresh_reuse_revokes_family(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    pair = await sign_in(client, EMAIL, account.password)
    rotated = await client.post(
        "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )

    reused = await client.post(
        "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    latest = await client.post(
        "/v1/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]}
    )
    me = await client.get("/v1/auth/me", headers=bearer(rotated.json()["access_token"]))

    assert_envelope(reused, 401, "invalid_refresh_token")
    assert_envelope(latest, 401, "invalid_refresh_token")
    assert_envelope(me, 401, "unauthorized")
    sessions = await fetch_all(app, select(UserSession))
    assert sessions[0].revoked_reason == "refresh_reuse"
    assert "session.refresh_reused" in await audit_actions(app)


async def test_refresh_reuse_spares_other_sessions(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    stolen = await sign_in(client, EMAIL, account.password)
    laptop = await sign_in(client, EMAIL, account.password)
    await client.post(
        "/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]}
    )

    await client.post(
        "/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]}
    )
    response = await client.get("/v1/auth/me", headers=bearer(laptop["access_token"]))

    assert response.status_code == 200


async def test_refresh_rejects_unknown_and_expired(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    pair = await sign_in(client, EMAIL, account.password)
    async with app.state.sessionmaker() as session:
        await session.execute(update(UserSession).values(expires_at=utc_now()))
        await session.commit()

    unknown = await client.post("/v1/auth/refresh", json={"refresh_token": "nope"})
    expired = await client.post(
        "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )

    assert_envelope(unknown, 401, "invalid_refresh_token")
    assert_envelope(expired, 401, "invalid_refresh_token")


async def test_logout_ends_this_session_only(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    this = await sign_in(client, EMAIL, account.password)
    other = await sign_in(client, EMAIL, account.password)

    response = await client.post(
        "/v1/auth/logout", headers=bearer(this["access_token"])
    )

    assert response.status_code == 204
    this_me = await client.get("/v1/auth/me", headers=bearer(this["access_token"]))
    assert_envelope(this_me, 401, "unauthorized")
    other_me = await client.get("/v1/auth/me", headers=bearer(other["access_token"]))
    assert other_me.status_code == 200
    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": this["refresh_token"]}
    )
    assert_envelope(refreshed, 401, "invalid_refresh_token")


async def test_logout_all_sessions(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    pairs = [await sign_in(client, EMAIL, account.password) for _ in range(3)]

    response = await client.post(
        "/v1/auth/logout",
        json={"all_sessions": True},
        headers=bearer(pairs[0]["access_token"]),
    )

    assert response.status_code == 204
    for pair in pairs:
        me = await client.get("/v1/auth/me", headers=bearer(pair["access_token"]))
        assert_envelope(me, 401, "unauthorized")
    fresh = await sign_in(client, EMAIL, account.password)
    me = await client.get("/v1/auth/me", headers=bearer(fresh["access_token"]))
    assert me.status_code == 200
    assert "session.logged_out" in await audit_actions(app)


async def test_not_before_rejects_older_tokens(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    pair = await sign_in(client, EMAIL, account.password)
    async with app.state.sessionmaker() as session:
        from trw_platform.auth.models import User

        await session.execute(update(User).values(tokens_not_before=utc_now()))
        await session.commit()

    response = await client.get("/v1/auth/me", headers=bearer(pair["access_token"]))

    assert_envelope(response, 401, "unauthorized")


async def test_logout_needs_access_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/logout")

    assert_envelope(response, 401, "unauthorized")


@pytest.fixture
async def throttled_client(database_url: str, tmp_path: Path) -> httpx.AsyncClient:
    settings = make_settings(
        database_url, tmp_path, LOGIN_FREE_FAILURES=2, RATE_LIMIT_AUTH="1000/minute"
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        http.app = app  # type: ignore[attr-defined]
        yield http
    await app.state.engine.dispose()


async def failed_login_statuses(http: httpx.AsyncClient, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        response = await login(http, EMAIL, "wrong password here")
        statuses.append(response.status_code)
    return statuses


async def test_failed_logins_get_growing_delays(
    throttled_client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)

    assert await failed_login_statuses(throttled_client, 3) == [401, 401, 401]
    blocked = await login(throttled_client, EMAIL, account.password)

    body = assert_envelope(blocked, 429, "rate_limited")
    assert blocked.headers["retry-after"] == "1"
    assert "failed logins" in body["detail"]

    await anyio.sleep(1.1)
    assert await failed_login_statuses(throttled_client, 1) == [401]
    second = await login(throttled_client, EMAIL, account.password)
    assert second.status_code == 429
    assert second.headers["retry-after"] == "2"


async def test_throttle_clears_after_success(
    throttled_client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    await failed_login_statuses(throttled_client, 2)

    assert (await login(throttled_client, EMAIL, account.password)).status_code == 200
    assert await failed_login_statuses(throttled_client, 3) == [401, 401, 401]


async def test_throttle_spares_owner_elsewhere(
    throttled_client: httpx.AsyncClient, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    await failed_login_statuses(throttled_client, 4)
    attacker = await login(throttled_client, EMAIL, account.password)

    app = throttled_client.app  # type: ignore[attr-defined]
    other_ip = httpx.ASGITransport(app=app, client=("192.0.2.10", 40000))
    async with httpx.AsyncClient(transport=other_ip, base_url="http://t") as owner:
        response = await login(owner, EMAIL, account.password)

    assert attacker.status_code == 429
    assert response.status_code == 200


async def test_throttle_covers_unknown_addresses(
    throttled_client: httpx.AsyncClient,
) -> None:
    statuses = []
    for _ in range(4):
        response = await login(throttled_client, "nobody@example.com", "guess guess")
        statuses.append(response.status_code)

    assert statuses == [401, 401, 401, 429]
