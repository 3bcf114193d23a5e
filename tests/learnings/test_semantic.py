"""Search with the embedding model on: semantic matches, client vectors, the cache."""

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import close_app, make_settings
from tests.factories import OrgWithKey, make_org_with_key
from tests.learnings.helpers import publish, search
from trw_platform.app import create_app
from trw_platform.learnings.embeddings import MODEL_NAME, shared_embedder

pytestmark = [pytest.mark.anyio, pytest.mark.learnings]

COMPOSE = {
    "source_learning_id": "compose-host",
    "summary": "Use the compose service name as the database host, not localhost",
    "detail": "Inside a compose network 127.0.0.1 is the app's own container.",
    "tags": ["docker"],
    "impact": 0.6,
}
OTHERS = [
    {
        "source_learning_id": "ruff-pin",
        "summary": "Pin the ruff version so lint results match between runs",
        "detail": "",
        "tags": ["lint"],
    },
    {
        "source_learning_id": "tz-tests",
        "summary": "Freeze the clock in tests that compute month boundaries",
        "detail": "Tests failed on the last day of each month.",
        "tags": ["tests"],
    },
]
# Shares no word, and no stem, with the compose learning.
PARAPHRASE = "webserver cannot connect to postgres sitting beside it, loopback refused"


@pytest.fixture
async def semantic_org(semantic_app: FastAPI) -> OrgWithKey:
    async with semantic_app.state.sessionmaker() as session:
        return await make_org_with_key(session, "Semantic")


async def _publish_corpus(client: httpx.AsyncClient, org: OrgWithKey) -> None:
    for fields in [COMPOSE, *OTHERS]:
        await publish(client, org, **fields)


def _ids(results: list[dict]) -> list[str]:
    return [result["source_learning_id"] for result in results]


async def test_paraphrase_found_by_meaning(
    semantic_client: httpx.AsyncClient, semantic_org: OrgWithKey
) -> None:
    await _publish_corpus(semantic_client, semantic_org)

    results = await search(semantic_client, semantic_org, query=PARAPHRASE, limit=3)

    assert _ids(results)[0] == "compose-host"
    assert all(0.0 <= result["score"] <= 1.0 for result in results)


async def test_keyword_only_misses_paraphrase(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    await _publish_corpus(client, org)

    assert await search(client, org, query=PARAPHRASE) == []


async def test_publish_records_embedding_model(
    semantic_client: httpx.AsyncClient, semantic_org: OrgWithKey
) -> None:
    learning = await publish(semantic_client, semantic_org, **COMPOSE)

    assert learning["embedding_model"] == MODEL_NAME


async def test_keyword_and_vector_agreeing_scores_highest(
    semantic_client: httpx.AsyncClient, semantic_org: OrgWithKey
) -> None:
    await _publish_corpus(semantic_client, semantic_org)

    results = await search(
        semantic_client, semantic_org, query="compose database host localhost"
    )

    assert _ids(results)[0] == "compose-host"
    assert results[0]["score"] > 0.8


async def test_client_query_vector_is_used(
    semantic_client: httpx.AsyncClient, semantic_org: OrgWithKey
) -> None:
    await _publish_corpus(semantic_client, semantic_org)
    vector = (await shared_embedder().encode_one(PARAPHRASE)).tolist()

    results = await search(
        semantic_client, semantic_org, query="", embedding=vector, limit=1
    )

    assert _ids(results) == ["compose-host"]


async def test_client_vector_of_other_size_is_ignored(
    semantic_client: httpx.AsyncClient, semantic_org: OrgWithKey
) -> None:
    await _publish_corpus(semantic_client, semantic_org)

    results = await search(
        semantic_client, semantic_org, query=PARAPHRASE, embedding=[0.5] * 768
    )

    assert _ids(results)[0] == "compose-host"


async def test_vector_search_applies_filters(
    semantic_client: httpx.AsyncClient, semantic_org: OrgWithKey
) -> None:
    await _publish_corpus(semantic_client, semantic_org)

    low_impact = await search(
        semantic_client, semantic_org, query=PARAPHRASE, min_impact=0.7
    )
    other_tag = await search(
        semantic_client, semantic_org, query=PARAPHRASE, tags=["lint"]
    )

    assert "compose-host" not in _ids(low_impact)
    assert _ids(other_tag) in ([], ["ruff-pin"])


async def test_retired_learning_leaves_vector_results(
    semantic_client: httpx.AsyncClient, semantic_org: OrgWithKey
) -> None:
    learning = await publish(semantic_client, semantic_org, **COMPOSE)
    await search(semantic_client, semantic_org, query=PARAPHRASE)
    await semantic_client.patch(
        f"/v1/learnings/{learning['id']}/status",
        json={"status": "obsolete"},
        headers=semantic_org.headers,
    )

    results = await search(semantic_client, semantic_org, query=PARAPHRASE)
    requested = await search(
        semantic_client, semantic_org, query=PARAPHRASE, status="obsolete"
    )

    assert "compose-host" not in _ids(results)
    assert _ids(requested) == ["compose-host"]


async def test_cache_follows_updates(
    semantic_client: httpx.AsyncClient, semantic_org: OrgWithKey
) -> None:
    await publish(semantic_client, semantic_org, **OTHERS[0])
    assert await search(semantic_client, semantic_org, query=PARAPHRASE) == []

    await publish(semantic_client, semantic_org, **{**OTHERS[0], **COMPOSE})
    updated = await search(semantic_client, semantic_org, query=PARAPHRASE)
    await publish(semantic_client, semantic_org, **OTHERS[1])
    added = await search(
        semantic_client, semantic_org, query="clock frozen at end of month", limit=1
    )

    assert _ids(updated) == ["compose-host"]
    assert _ids(added) == ["tz-tests"]


async def test_other_worker_sees_writes(
    semantic_app: FastAPI,
    semantic_client: httpx.AsyncClient,
    semantic_org: OrgWithKey,
    database_url: str,
    tmp_path: Path,
) -> None:
    worker = create_app(make_settings(database_url, tmp_path, EMBEDDINGS=True))
    transport = httpx.ASGITransport(app=worker)
    async with httpx.AsyncClient(transport=transport, base_url="http://w2") as other:
        before = await search(other, semantic_org, query=PARAPHRASE)
        await publish(semantic_client, semantic_org, **COMPOSE)
        after = await search(other, semantic_org, query=PARAPHRASE)
    await close_app(worker)

    assert before == []
    assert _ids(after) == ["compose-host"]


async def test_vector_search_sees_own_organization_only(
    semantic_app: FastAPI,
    semantic_client: httpx.AsyncClient,
    semantic_org: OrgWithKey,
) -> None:
    async with semantic_app.state.sessionmaker() as session:
        stranger = await make_org_with_key(session, "Stranger")
    await _publish_corpus(semantic_client, stranger)

    assert await search(semantic_client, semantic_org, query=PARAPHRASE) == []


async def test_embeddings_off_stores_no_vector(
    client: httpx.AsyncClient, org: OrgWithKey, db: AsyncSession
) -> None:
    learning = await publish(client, org, **COMPOSE)

    assert learning["embedding_model"] is None
