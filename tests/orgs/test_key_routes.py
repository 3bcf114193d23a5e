"""Owner and admin management of an organization's API keys over the API."""

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import bearer, fetch_all, sign_in
from tests.core.test_app import assert_envelope
from tests.factories import make_user
from trw_platform.auth import passwords
from trw_platform.core.audit import AuditEvent
from trw_platform.orgs import memberships

pytestmark = [pytest.mark.anyio, pytest.mark.accounts]


@pytest.fixture(autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    passwords.set_hash_cost(time_cost=1, memory_kib=1024)
    yield
    passwords.set_hash_cost(time_cost=3, memory_kib=65536)


@pytest.fixture
async def owner(client: httpx.AsyncClient, db: AsyncSession) -> dict:
    account = await make_user(db, "owner@example.com")
    pair = await sign_in(client, "owner@example.com", account.password)
    return {"org": account.organization.id, "headers": bearer(pair["access_token"])}


async def signed_in_with_role(
    client: httpx.AsyncClient, db: AsyncSession, organization_id: str, role: str
) -> dict[str, str]:
    account = await make_user(db, f"{role}@example.com")
    await memberships.add_member(
        db, organization_id=organization_id, user_id=account.user.id, role=role
    )
    await db.commit()
    pair = await sign_in(client, f"{role}@example.com", account.password)
    return bearer(pair["access_token"])


async def test_owner_creates_lists_and_revokes_key(
    app: FastAPI, client: httpx.AsyncClient, owner: dict
) -> None:
    path = f"/v1/orgs/{owner['org']}/api-keys"

    created = await client.post(
        path,
        json={"name": "ci", "scopes": ["telemetry:write"], "expires_in_days": 30},
        headers=owner["headers"],
    )
    listed = await client.get(path, headers=owner["headers"])
    key = created.json()
    works = await client.post(
        "/v1/telemetry", json={"events": []}, headers=bearer(key["api_key"])
    )
    revoked = await client.delete(f"{path}/{key['id']}", headers=owner["headers"])
    after = await client.post(
        "/v1/telemetry", json={"events": []}, headers=bearer(key["api_key"])
    )

    assert created.status_code == 201
    assert key["api_key"].startswith("trw_live_")
    assert key["scopes"] == ["telemetry:write"]
    assert key["expires_at"] is not None
    assert [item["id"] for item in listed.json()] == [key["id"]]
    assert "api_key" not in listed.json()[0]
    assert works.status_code < 300
    assert revoked.status_code == 204
    assert_envelope(after, 401, "unauthorized")
    events = await fetch_all(app, select(AuditEvent))
    actions = [event.action for event in events if event.subject_id == key["id"]]
    assert actions == ["api_key.created", "api_key.first_used", "api_key.revoked"]


async def test_admin_may_manage_keys(
    client: httpx.AsyncClient, db: AsyncSession, owner: dict
) -> None:
    headers = await signed_in_with_role(client, db, owner["org"], "admin")

    response = await client.post(
        f"/v1/orgs/{owner['org']}/api-keys", json={"name": "x"}, headers=headers
    )

    assert response.status_code == 201


async def test_member_may_not_manage_keys(
    client: httpx.AsyncClient, db: AsyncSession, owner: dict
) -> None:
    headers = await signed_in_with_role(client, db, owner["org"], "member")
    path = f"/v1/orgs/{owner['org']}/api-keys"

    listed = await client.get(path, headers=headers)
    created = await client.post(path, json={"name": "x"}, headers=headers)
    revoked = await client.delete(f"{path}/whatever", headers=headers)

    for response in (listed, created, revoked):
        assert_envelope(response, 403, "insufficient_role")


async def test_other_org_answers_not_found(
    client: httpx.AsyncClient, db: AsyncSession, owner: dict
) -> None:
    stranger = await make_user(db, "stranger@example.com")

    response = await client.get(
        f"/v1/orgs/{stranger.organization.id}/api-keys", headers=owner["headers"]
    )

    assert_envelope(response, 404, "not_found")


async def test_key_routes_need_sign_in(client: httpx.AsyncClient, owner: dict) -> None:
    response = await client.get(f"/v1/orgs/{owner['org']}/api-keys")

    assert_envelope(response, 401, "unauthorized")


async def test_create_rejects_unknown_scope(
    client: httpx.AsyncClient, owner: dict
) -> None:
    response = await client.post(
        f"/v1/orgs/{owner['org']}/api-keys",
        json={"name": "x", "scopes": ["root"]},
        headers=owner["headers"],
    )
    empty = await client.post(
        f"/v1/orgs/{owner['org']}/api-keys", json={"name": ""}, headers=owner["headers"]
    )

    body = assert_envelope(response, 422, "unknown_scope")
    assert "root" in body["detail"]
    assert_envelope(empty, 422, "validation_error")


async def test_revoke_unknown_key_not_found(
    client: httpx.AsyncClient, owner: dict
) -> None:
    response = await client.delete(
        f"/v1/orgs/{owner['org']}/api-keys/nope", headers=owner["headers"]
    )

    assert_envelope(response, 404, "not_found")
