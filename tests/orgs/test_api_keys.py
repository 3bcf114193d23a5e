"""API key authentication: raw keys, JWT exchange, expiry, revocation, scopes."""

from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import TEST_SECRET
from tests.core.test_app import assert_envelope
from tests.factories import make_key, make_org, make_org_with_key
from trw_platform.core.db import utc_now
from trw_platform.orgs import keys, service
from trw_platform.orgs.models import ApiKey

pytestmark = pytest.mark.anyio

STATS = "/v1/telemetry/stats"


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def test_generated_key_format_and_checksum() -> None:
    key = keys.generate_key()
    tampered = key[:-7] + ("A" if key[-7] != "A" else "B") + key[-6:]

    assert key.startswith("trw_live_")
    assert len(key) == len("trw_live_") + keys.BODY_LENGTH + keys.CHECKSUM_LENGTH
    assert keys.is_well_formed(key)
    assert not keys.is_well_formed(tampered)
    assert keys.is_well_formed(keys.generate_key(keys.DEVICE_PREFIX))


async def test_raw_key_accepted_as_bearer(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org_with_key(db)

    response = await client.get(STATS, headers=org.headers)

    assert response.status_code == 200


async def test_key_stored_only_as_hash(db: AsyncSession) -> None:
    org = await make_org_with_key(db)

    stored = await db.scalar(select(ApiKey).where(ApiKey.id == org.api_key.id))

    assert stored is not None
    assert org.raw_key not in (stored.key_hash, stored.hint)
    assert len(stored.key_hash) == 64
    assert stored.hint.endswith(org.raw_key[-4:])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer trw_live_short"},
        {"Authorization": "Bearer not-a-jwt.at.all"},
    ],
    ids=["missing", "basic", "empty", "malformed", "bad-jwt"],
)
async def test_bad_credentials_rejected(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get(STATS, headers=headers)

    assert_envelope(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_malformed_key_rejected_without_query(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    key = keys.generate_key()
    mistyped = key[:12] + ("x" if key[12] != "x" else "y") + key[13:]
    event.listen(app.state.engine.sync_engine, "before_cursor_execute", record)
    try:
        response = await client.get(STATS, headers=bearer(mistyped))
    finally:
        event.remove(app.state.engine.sync_engine, "before_cursor_execute", record)

    assert response.status_code == 401
    assert not any("api_keys" in statement for statement in statements)


async def test_unknown_well_formed_key_rejected(client: httpx.AsyncClient) -> None:
    response = await client.get(STATS, headers=bearer(keys.generate_key()))

    assert_envelope(response, 401, "unauthorized")


async def test_revoked_key_rejected(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org_with_key(db)
    await service.revoke_api_key(db, key_id=org.api_key.id)
    await db.commit()

    response = await client.get(STATS, headers=org.headers)

    assert_envelope(response, 401, "unauthorized")


async def test_expired_key_rejected(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    organization = await make_org(db)
    _, raw_key = await make_key(
        db, organization, expires_at=utc_now() - timedelta(seconds=1)
    )

    response = await client.get(STATS, headers=bearer(raw_key))

    assert_envelope(response, 401, "unauthorized")


async def test_missing_scope_names_scope(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org_with_key(db, scopes=["telemetry:write"])

    response = await client.get(STATS, headers=org.headers)

    body = assert_envelope(response, 403, "insufficient_scope")
    assert "telemetry:read" in body["detail"]


async def test_token_exchange_and_use(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org_with_key(db)

    exchanged = await client.post("/v1/auth/token", json={"api_key": org.raw_key})
    body = exchanged.json()
    used = await client.get(STATS, headers=bearer(body["access_token"]))

    assert exchanged.status_code == 200
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 900
    claims = jwt.decode(body["access_token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] <= 900
    assert claims["org"] == org.organization.id
    assert used.status_code == 200


async def test_token_exchange_rejects_bad_key(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/token", json={"api_key": keys.generate_key()}
    )

    assert_envelope(response, 401, "unauthorized")


async def test_revoking_key_invalidates_its_tokens(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org_with_key(db)
    token = (await client.post("/v1/auth/token", json={"api_key": org.raw_key})).json()

    await service.revoke_api_key(db, key_id=org.api_key.id)
    await db.commit()
    response = await client.get(STATS, headers=bearer(token["access_token"]))

    assert_envelope(response, 401, "unauthorized")


async def test_expired_or_forged_token_rejected(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org_with_key(db)
    now = utc_now()
    claims = {"sub": org.api_key.id, "typ": "api_key", "org": org.organization.id}
    expired = jwt.encode(
        {**claims, "iat": now - timedelta(hours=1), "exp": now - timedelta(minutes=1)},
        TEST_SECRET,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {**claims, "exp": now + timedelta(minutes=5)},
        "other-secret-of-32-bytes-or-more!",
        algorithm="HS256",
    )

    for token in (expired, forged):
        response = await client.get(STATS, headers=bearer(token))
        assert_envelope(response, 401, "unauthorized")


async def test_last_use_recorded_at_most_once_a_minute(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org_with_key(db)
    key_id = org.api_key.id
    query = select(ApiKey.last_used_at, ApiKey.last_used_ip).where(ApiKey.id == key_id)

    await client.get(STATS, headers=org.headers)
    first_at, first_ip = (await db.execute(query)).one()
    await client.get(STATS, headers=org.headers)
    second_at, _ = (await db.execute(query)).one()

    assert first_at is not None
    assert second_at == first_at
    assert first_ip == "127.0.0.1"


async def test_other_org_key_does_not_revoke(db: AsyncSession) -> None:
    first = await make_org_with_key(db, "First")
    second = await make_org_with_key(db, "Second")

    with pytest.raises(service.ApiKeyNotFound):
        await service.revoke_api_key(
            db, key_id=first.api_key.id, organization_id=second.organization.id
        )
