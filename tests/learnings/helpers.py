"""Request helpers shared by the learnings tests."""

from typing import Any

import httpx

from tests.factories import OrgWithKey


def learning_body(source_learning_id: str = "L-0001", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "summary": "Run alembic upgrade heads after pulling new migrations",
        "detail": "Each domain keeps its own branch, so upgrade to every head.",
        "tags": ["alembic", "migrations"],
        "impact": 0.7,
        "status": "active",
        "source_project": "3f2a9c1d5e7b8a60",
        "source_learning_id": source_learning_id,
    }
    body.update(fields)
    return body


async def publish(
    client: httpx.AsyncClient, org: OrgWithKey, **fields: Any
) -> dict[str, Any]:
    """Publish a learning and return the response body; fails on a non-2xx."""
    response = await client.post(
        "/v1/learnings", json=learning_body(**fields), headers=org.headers
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


async def search(
    client: httpx.AsyncClient, org: OrgWithKey, **body: Any
) -> list[dict[str, Any]]:
    response = await client.post("/v1/learnings/search", json=body, headers=org.headers)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def assert_envelope(response: httpx.Response, status: int, code: str) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail", "request_id"}
    assert body["error"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    return body["detail"]
