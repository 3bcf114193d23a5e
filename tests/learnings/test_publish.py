"""POST /v1/learnings: upsert, replays, limits, auth and odd input."""

import asyncio

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import OrgWithKey, make_key
from tests.learnings.helpers import assert_envelope, learning_body, publish
from trw_platform.learnings.models import Learning, LearningSequence

pytestmark = [pytest.mark.anyio, pytest.mark.learnings]


async def test_insert_returns_whole_learning(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    body = learning_body(type="workaround", metadata={"phase": "deliver"})
    response = await client.post("/v1/learnings", json=body, headers=org.headers)

    assert response.status_code == 201
    learning = response.json()
    assert len(learning["id"]) == 32
    assert learning["summary"] == body["summary"]
    assert learning["detail"] == body["detail"]
    assert learning["tags"] == ["alembic", "migrations"]
    assert learning["impact"] == 0.7
    assert learning["status"] == "active"
    assert learning["type"] == "workaround"
    assert learning["metadata"] == {"phase": "deliver"}
    assert learning["source_project"] == "3f2a9c1d5e7b8a60"
    assert learning["source_learning_id"] == "L-0001"
    assert learning["version"] == 1
    assert learning["sync_seq"] == 1
    assert learning["created_at"] == learning["updated_at"]
    assert learning["embedding_model"] is None


async def test_replay_answers_200_and_changes_nothing(
    client: httpx.AsyncClient, org: OrgWithKey, db: AsyncSession
) -> None:
    first = await client.post(
        "/v1/learnings", json=learning_body(), headers=org.headers
    )
    second = await client.post(
        "/v1/learnings", json=learning_body(), headers=org.headers
    )

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json() == first.json()
    counter = await db.scalar(
        select(LearningSequence.last_value).where(
            LearningSequence.organization_id == org.organization.id
        )
    )
    assert counter == 1


async def test_update_keeps_id_and_takes_next_seq(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    first = await publish(client, org)
    response = await client.post(
        "/v1/learnings",
        json=learning_body(summary="Upgrade to heads, not head", impact=0.9),
        headers=org.headers,
    )

    assert response.status_code == 200
    updated = response.json()
    assert updated["id"] == first["id"]
    assert updated["summary"] == "Upgrade to heads, not head"
    assert updated["impact"] == 0.9
    assert updated["version"] == 2
    assert updated["sync_seq"] == 2
    assert updated["created_at"] == first["created_at"]
    assert updated["updated_at"] > first["updated_at"]


async def test_sequence_is_per_organization(
    client: httpx.AsyncClient, org: OrgWithKey, other_org: OrgWithKey
) -> None:
    first = await publish(client, org, source_learning_id="L-1")
    second = await publish(client, org, source_learning_id="L-2")
    other = await publish(client, other_org, source_learning_id="L-1")

    assert (first["sync_seq"], second["sync_seq"]) == (1, 2)
    assert other["sync_seq"] == 1
    assert other["id"] != first["id"]


async def test_missing_source_project_counts_as_unknown(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    body = learning_body()
    del body["source_project"]
    first = await client.post("/v1/learnings", json=body, headers=org.headers)
    body["source_project"] = "unknown"
    second = await client.post("/v1/learnings", json=body, headers=org.headers)

    assert first.json()["source_project"] == "unknown"
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]


async def test_same_source_id_in_other_project_is_new(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    first = await publish(client, org, source_project="aaaaaaaaaaaaaaaa")
    second = await client.post(
        "/v1/learnings",
        json=learning_body(source_project="bbbbbbbbbbbbbbbb"),
        headers=org.headers,
    )

    assert second.status_code == 201
    assert second.json()["id"] != first["id"]


@pytest.mark.parametrize("source_id", [None, ""], ids=["missing", "empty"])
async def test_replay_without_source_id_upserts(
    client: httpx.AsyncClient, org: OrgWithKey, source_id: str | None
) -> None:
    body = learning_body()
    if source_id is None:
        del body["source_learning_id"]
    else:
        body["source_learning_id"] = source_id
    first = await client.post("/v1/learnings", json=body, headers=org.headers)
    replay = await client.post("/v1/learnings", json=body, headers=org.headers)
    other = await client.post(
        "/v1/learnings", json={**body, "summary": "Another one"}, headers=org.headers
    )

    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json()["id"] == first.json()["id"]
    assert first.json()["source_learning_id"].startswith("auto-")
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]


async def test_trw_memory_body_without_status(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    body = {
        "summary": "Prefer uv over pip in CI",
        "detail": None,
        "tags": ["ci"],
        "impact": 0.8,
        "source_project": "unknown",
        "source_learning_id": "mem-42",
    }
    response = await client.post("/v1/learnings", json=body, headers=org.headers)

    assert response.status_code == 201
    assert response.json()["detail"] == ""
    assert response.json()["status"] == "active"


async def test_republish_without_status_keeps_status(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    learning = await publish(client, org)
    await client.patch(
        f"/v1/learnings/{learning['id']}/status",
        json={"status": "obsolete"},
        headers=org.headers,
    )
    body = learning_body(summary="A changed summary")
    del body["status"]
    response = await client.post("/v1/learnings", json=body, headers=org.headers)

    assert response.status_code == 200
    assert response.json()["status"] == "obsolete"
    assert response.json()["summary"] == "A changed summary"


async def test_status_change_by_publish_is_recorded(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    await publish(client, org)
    updated = await publish(client, org, status="resolved")

    assert updated["status"] == "resolved"
    assert updated["status_changed_by"] == org.api_key.id
    assert updated["status_changed_at"] is not None


async def test_unknown_fields_are_accepted(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    body = learning_body(
        embedding=[0.1] * 384,
        evidence=["commit abc"],
        vector_clock={"a": 1},
        recurrence=3,
    )
    response = await client.post("/v1/learnings", json=body, headers=org.headers)

    assert response.status_code == 201
    assert "evidence" not in response.json()


async def test_metadata_values_become_strings(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    metadata = {"count": 3, "ratio": 0.5, "flag": True, "empty": None, "s": "x"}
    learning = await publish(client, org, metadata=metadata)

    assert learning["metadata"] == {
        "count": "3",
        "ratio": "0.5",
        "flag": "True",
        "empty": "",
        "s": "x",
    }


async def test_tags_are_trimmed_and_deduplicated(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    learning = await publish(client, org, tags=[" ci ", "ci", "Docker"])

    assert learning["tags"] == ["ci", "Docker"]


async def test_validity_fields_round_trip(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    learning = await publish(
        client,
        org,
        valid_from="2026-01-02T03:04:05+02:00",
        invalid_from="2026-06-01T00:00:00Z",
        invalidated_by="L-0002",
    )
    replay = await client.post(
        "/v1/learnings",
        json=learning_body(
            valid_from="2026-01-02T01:04:05Z",
            invalid_from="2026-06-01T00:00:00Z",
            invalidated_by="L-0002",
        ),
        headers=org.headers,
    )

    assert learning["valid_from"] == "2026-01-02T01:04:05Z"
    assert learning["invalidated_by"] == "L-0002"
    assert replay.json()["sync_seq"] == learning["sync_seq"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("summary", "s" * 1001),
        ("summary", ""),
        ("detail", "d" * 10_001),
        ("tags", [f"tag-{index}" for index in range(21)]),
        ("tags", ["t" * 101]),
        ("impact", 1.5),
        ("impact", -0.1),
        ("status", "deleted"),
        ("type", "rumour"),
        ("source_learning_id", "x" * 129),
        ("embedding", [0.1, "x"]),
    ],
)
async def test_invalid_field_names_its_location(
    client: httpx.AsyncClient, org: OrgWithKey, field: str, value: object
) -> None:
    response = await client.post(
        "/v1/learnings", json=learning_body(**{field: value}), headers=org.headers
    )

    detail = assert_envelope(response, 422, "validation_error")
    assert detail[0]["loc"][:2] == ["body", field]


async def test_fields_at_their_limits_are_accepted(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    body = learning_body(
        summary="s" * 1000,
        detail="d" * 10_000,
        tags=[f"tag-{index}" for index in range(20)],
        impact=1.0,
    )
    response = await client.post("/v1/learnings", json=body, headers=org.headers)

    assert response.status_code == 201
    assert len(response.json()["detail"]) == 10_000
    assert len(response.json()["tags"]) == 20


@pytest.mark.parametrize(
    ("field", "value"),
    [("summary", 42), ("tags", "ci"), ("impact", "high"), ("metadata", [1])],
)
async def test_wrong_types_are_rejected(
    client: httpx.AsyncClient, org: OrgWithKey, field: str, value: object
) -> None:
    response = await client.post(
        "/v1/learnings", json=learning_body(**{field: value}), headers=org.headers
    )

    detail = assert_envelope(response, 422, "validation_error")
    assert detail[0]["loc"][:2] == ["body", field]


async def test_malformed_json_is_rejected(
    client: httpx.AsyncClient, org: OrgWithKey, db: AsyncSession
) -> None:
    headers = {**org.headers, "content-type": "application/json"}
    response = await client.post(
        "/v1/learnings", content=b'{"summary": "cut off', headers=headers
    )

    detail = assert_envelope(response, 400, "invalid_json")
    assert detail.startswith("The request body is not valid JSON")
    assert await db.scalar(select(func.count()).select_from(Learning)) == 0


@pytest.mark.parametrize(
    "raw",
    [b'\xff\xfe{"summary": "x"}', b'{"pad": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"],
    ids=["not-utf8", "nested-too-deep"],
)
async def test_unparseable_body_is_invalid_json(
    client: httpx.AsyncClient, org: OrgWithKey, db: AsyncSession, raw: bytes
) -> None:
    headers = {**org.headers, "content-type": "application/json"}
    response = await client.post("/v1/learnings", content=raw, headers=headers)

    detail = assert_envelope(response, 400, "invalid_json")
    assert detail.startswith("The request body is not valid JSON")
    assert await db.scalar(select(func.count()).select_from(Learning)) == 0


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded"]
)
async def test_body_of_other_media_type_is_415(
    client: httpx.AsyncClient, org: OrgWithKey, content_type: str
) -> None:
    headers = {**org.headers, "content-type": content_type}
    response = await client.post(
        "/v1/learnings", content=b'{"summary": "typed wrong"}', headers=headers
    )

    detail = assert_envelope(response, 415, "unsupported_media_type")
    assert content_type in detail


async def test_body_must_be_an_object(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    response = await client.post("/v1/learnings", json=["summary"], headers=org.headers)

    assert_envelope(response, 422, "validation_error")


async def test_missing_key_answers_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/learnings", json=learning_body())

    assert_envelope(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_key_answers_401(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": "Bearer trw_live_notarealkey"}
    response = await client.post("/v1/learnings", json=learning_body(), headers=headers)

    assert_envelope(response, 401, "unauthorized")


async def test_read_only_key_cannot_publish(
    client: httpx.AsyncClient, org: OrgWithKey, db: AsyncSession
) -> None:
    _key, raw_key = await make_key(db, org.organization, scopes=["learnings:read"])
    response = await client.post(
        "/v1/learnings",
        json=learning_body(),
        headers={"Authorization": f"Bearer {raw_key}"},
    )

    detail = assert_envelope(response, 403, "insufficient_scope")
    assert "learnings:write" in detail


async def test_unicode_text_round_trips(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    summary = "Ümlaut, 中文, עברית, emoji 🚀 and combining é"
    learning = await publish(client, org, summary=summary, tags=["日本語"])
    fetched = await client.get(f"/v1/learnings/{learning['id']}", headers=org.headers)

    assert fetched.json()["summary"] == summary
    assert fetched.json()["tags"] == ["日本語"]


async def test_nul_and_lone_surrogates_are_replaced(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    raw = b'{"summary": "nul \\u0000 and \\ud800 alone", "source_learning_id": "L-9"}'
    headers = {**org.headers, "content-type": "application/json"}
    response = await client.post("/v1/learnings", content=raw, headers=headers)

    assert response.status_code == 201, response.text
    assert "\x00" not in response.json()["summary"]
    assert response.json()["summary"].startswith("nul \ufffd and ")


@pytest.mark.parametrize(
    "stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
)
async def test_time_beyond_utc_range_rejected(
    client: httpx.AsyncClient, org: OrgWithKey, stamp: str
) -> None:
    response = await client.post(
        "/v1/learnings",
        json=learning_body(summary="edge", valid_from=stamp),
        headers=org.headers,
    )

    detail = assert_envelope(response, 422, "validation_error")
    assert detail[0]["loc"][-1] == "valid_from"


async def test_page_beyond_cap_rejected(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    response = await client.get(
        "/v1/learnings", params={"page": 10**20}, headers=org.headers
    )

    assert_envelope(response, 422, "validation_error")


async def test_concurrent_updates_count_each_version(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    await publish(client, org, source_learning_id="busy", summary="first")

    responses = await asyncio.gather(
        *(
            client.post(
                "/v1/learnings",
                json=learning_body(source_learning_id="busy", summary=f"update {i}"),
                headers=org.headers,
            )
            for i in range(6)
        )
    )

    assert [response.status_code for response in responses] == [200] * 6
    versions = sorted(response.json()["version"] for response in responses)
    assert versions == [2, 3, 4, 5, 6, 7]
