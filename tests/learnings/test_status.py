"""PATCH /v1/learnings/{id}/status."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import OrgWithKey, make_key
from tests.learnings.helpers import assert_envelope, publish

pytestmark = [pytest.mark.anyio, pytest.mark.learnings]


async def _patch(
    client: httpx.AsyncClient, org: OrgWithKey, learning_id: str, status: object
) -> httpx.Response:
    return await client.patch(
        f"/v1/learnings/{learning_id}/status",
        json={"status": status},
        headers=org.headers,
    )


async def test_obsolete_records_time_and_key(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    learning = await publish(client, org)
    response = await _patch(client, org, learning["id"], "obsolete")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == learning["id"]
    assert body["status"] == "obsolete"
    assert body["status_changed_by"] == org.api_key.id
    assert body["status_changed_at"] >= learning["updated_at"]
    assert body["sync_seq"] == learning["sync_seq"] + 1
    assert body["version"] == 2


async def test_repeated_status_is_idempotent(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    learning = await publish(client, org)
    first = await _patch(client, org, learning["id"], "obsolete")
    second = await _patch(client, org, learning["id"], "obsolete")

    assert second.status_code == 200
    assert second.json() == first.json()


@pytest.mark.parametrize(
    "status", ["resolved", "obsolete", "obsolete_poisoned", "archived", "active"]
)
async def test_every_status_is_accepted(
    client: httpx.AsyncClient, org: OrgWithKey, status: str
) -> None:
    learning = await publish(
        client, org, status="resolved" if status == "active" else "active"
    )
    response = await _patch(client, org, learning["id"], status)

    assert response.status_code == 200
    assert response.json()["status"] == status


async def test_status_change_shows_in_get(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    learning = await publish(client, org)
    await _patch(client, org, learning["id"], "resolved")
    fetched = await client.get(f"/v1/learnings/{learning['id']}", headers=org.headers)

    assert fetched.json()["status"] == "resolved"


@pytest.mark.parametrize("status", ["deleted", "", 3, None])
async def test_unknown_status_is_rejected(
    client: httpx.AsyncClient, org: OrgWithKey, status: object
) -> None:
    learning = await publish(client, org)
    response = await _patch(client, org, learning["id"], status)

    detail = assert_envelope(response, 422, "validation_error")
    assert detail[0]["loc"] == ["body", "status"]


async def test_unknown_id_answers_404(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    response = await _patch(client, org, "f" * 32, "obsolete")

    assert assert_envelope(response, 404, "not_found") == "Learning not found"


async def test_other_organization_answers_404(
    client: httpx.AsyncClient, org: OrgWithKey, other_org: OrgWithKey
) -> None:
    theirs = await publish(client, other_org)
    response = await _patch(client, org, theirs["id"], "obsolete")
    fetched = await client.get(
        f"/v1/learnings/{theirs['id']}", headers=other_org.headers
    )

    assert_envelope(response, 404, "not_found")
    assert fetched.json()["status"] == "active"


async def test_needs_write_scope(
    client: httpx.AsyncClient, org: OrgWithKey, db: AsyncSession
) -> None:
    learning = await publish(client, org)
    _key, raw_key = await make_key(db, org.organization, scopes=["learnings:read"])
    response = await client.patch(
        f"/v1/learnings/{learning['id']}/status",
        json={"status": "obsolete"},
        headers={"Authorization": f"Bearer {raw_key}"},
    )
    anonymous = await client.patch(
        f"/v1/learnings/{learning['id']}/status", json={"status": "obsolete"}
    )

    assert_envelope(response, 403, "insufficient_scope")
    assert_envelope(anonymous, 401, "unauthorized")


async def test_malformed_json_is_rejected(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    learning = await publish(client, org)
    response = await client.patch(
        f"/v1/learnings/{learning['id']}/status",
        content=b"{status: obsolete}",
        headers={**org.headers, "content-type": "application/json"},
    )
    stored = await client.get(f"/v1/learnings/{learning['id']}", headers=org.headers)

    assert_envelope(response, 400, "invalid_json")
    assert stored.json()["status"] == "active"
