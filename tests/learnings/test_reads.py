"""GET /v1/learnings and GET /v1/learnings/{id}."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import OrgWithKey, make_key
from tests.learnings.helpers import assert_envelope, publish

pytestmark = [pytest.mark.anyio, pytest.mark.learnings]


async def _publish_five(client: httpx.AsyncClient, org: OrgWithKey) -> list[dict]:
    learnings = []
    for index in range(5):
        learnings.append(
            await publish(
                client,
                org,
                source_learning_id=f"L-{index}",
                summary=f"Learning number {index}",
            )
        )
    return learnings


async def test_list_pages_newest_first(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    learnings = await _publish_five(client, org)
    first = await client.get(
        "/v1/learnings", params={"page": 1, "page_size": 2}, headers=org.headers
    )
    last = await client.get(
        "/v1/learnings", params={"page": 3, "page_size": 2}, headers=org.headers
    )

    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"items", "total", "page", "page_size"}
    assert (body["total"], body["page"], body["page_size"]) == (5, 1, 2)
    assert [item["id"] for item in body["items"]] == [
        learnings[4]["id"],
        learnings[3]["id"],
    ]
    assert [item["id"] for item in last.json()["items"]] == [learnings[0]["id"]]


async def test_list_page_past_end_is_empty(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    await _publish_five(client, org)
    response = await client.get(
        "/v1/learnings", params={"page": 9, "page_size": 2}, headers=org.headers
    )

    assert response.json()["items"] == []
    assert response.json()["total"] == 5


async def test_list_filters(client: httpx.AsyncClient, org: OrgWithKey) -> None:
    await publish(client, org, source_learning_id="A", tags=["Docker"], type="incident")
    await publish(
        client,
        org,
        source_learning_id="B",
        summary="100% of builds broke",
        status="resolved",
    )
    await publish(client, org, source_learning_id="C", detail="uses snake_case names")

    async def ids(**params: object) -> list[str]:
        response = await client.get("/v1/learnings", params=params, headers=org.headers)
        assert response.status_code == 200, response.text
        return [item["source_learning_id"] for item in response.json()["items"]]

    assert await ids(tag="docker") == ["A"]
    assert await ids(type="incident") == ["A"]
    assert await ids(status="resolved") == ["B"]
    assert sorted(await ids(status=["resolved", "active"])) == ["A", "B", "C"]
    assert await ids(text="100%") == ["B"]
    assert await ids(text="SNAKE_CASE") == ["C"]
    assert await ids(text="snake%case") == []


async def test_list_shows_only_own_organization(
    client: httpx.AsyncClient, org: OrgWithKey, other_org: OrgWithKey
) -> None:
    await publish(client, other_org)
    response = await client.get("/v1/learnings", headers=org.headers)

    assert response.json()["total"] == 0
    assert response.json()["items"] == []


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"page_size": 0}, {"page_size": 201}, {"status": "gone"}],
)
async def test_list_rejects_bad_parameters(
    client: httpx.AsyncClient, org: OrgWithKey, params: dict
) -> None:
    response = await client.get("/v1/learnings", params=params, headers=org.headers)

    detail = assert_envelope(response, 422, "validation_error")
    assert detail[0]["loc"][0] == "query"


async def test_get_returns_learning(client: httpx.AsyncClient, org: OrgWithKey) -> None:
    learning = await publish(client, org)
    response = await client.get(f"/v1/learnings/{learning['id']}", headers=org.headers)

    assert response.status_code == 200
    assert response.json() == learning


async def test_get_unknown_id_answers_404(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    response = await client.get("/v1/learnings/" + "0" * 32, headers=org.headers)

    assert assert_envelope(response, 404, "not_found") == "Learning not found"


async def test_get_other_organization_answers_404(
    client: httpx.AsyncClient, org: OrgWithKey, other_org: OrgWithKey
) -> None:
    theirs = await publish(client, other_org)
    response = await client.get(f"/v1/learnings/{theirs['id']}", headers=org.headers)

    assert assert_envelope(response, 404, "not_found") == "Learning not found"
    assert theirs["summary"] not in response.text


async def test_reads_need_a_key(client: httpx.AsyncClient) -> None:
    listed = await client.get("/v1/learnings")
    fetched = await client.get("/v1/learnings/" + "0" * 32)

    assert_envelope(listed, 401, "unauthorized")
    assert_envelope(fetched, 401, "unauthorized")


async def test_write_only_key_cannot_read(
    client: httpx.AsyncClient, org: OrgWithKey, db: AsyncSession
) -> None:
    _key, raw_key = await make_key(db, org.organization, scopes=["learnings:write"])
    headers = {"Authorization": f"Bearer {raw_key}"}
    listed = await client.get("/v1/learnings", headers=headers)
    searched = await client.post(
        "/v1/learnings/search", json={"query": "x"}, headers=headers
    )

    assert_envelope(listed, 403, "insufficient_scope")
    assert_envelope(searched, 403, "insufficient_scope")


async def test_trailing_slash_is_served(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    response = await client.get("/v1/learnings/", headers=org.headers)

    assert response.status_code == 200
    assert response.json()["total"] == 0
