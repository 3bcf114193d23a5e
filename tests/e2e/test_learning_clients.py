"""Shared learnings from the real clients against a live server.

trw-mcp 9.5.1 and 0.62.0 publish with ``publish_learnings`` (0.62.0 also runs
remote recall), and trw-memory 5.4.0's ``MemoryClient`` publishes, recalls with
shared results and retires. Each test checks what the client reported and sent
and what the server then stores.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from .clients import (
    TRW_MCP_NEW,
    TRW_MCP_OLD,
    TRW_MEMORY,
    ClientEnv,
    ClientSession,
    ensure_client_env,
)
from .server_api import LiveServer, search_learnings

pytestmark = [pytest.mark.e2e, pytest.mark.learnings]

#: Fields trw-mcp 9.5.1's publisher sends; 0.62.0 adds ``embedding``.
MCP_PUBLISH_FIELDS = {
    "summary",
    "detail",
    "tags",
    "impact",
    "source_project",
    "source_learning_id",
    "status",
}
#: Fields trw-memory 5.4.0 sends: no ``status`` and no ``embedding``.
MEMORY_PUBLISH_FIELDS = {
    "summary",
    "detail",
    "tags",
    "impact",
    "source_project",
    "source_learning_id",
}
#: Tag trw-mcp 9.5.1 puts on a ``local learn`` learning until the next session start.
RECONCILE_PENDING_TAG = "trw-reconcile-pending"


def new_marker() -> str:
    return f"e2e{uuid.uuid4().hex[:12]}"


def requests_to(result: dict[str, Any], method: str, path: str) -> list[dict[str, Any]]:
    return [
        r for r in result["requests"] if r["method"] == method and r["path"] == path
    ]


def assert_authenticated_json(request: dict[str, Any]) -> None:
    label = f"{request['method']} {request['path']}"
    assert request["authorization"] == "Bearer <configured key>", label
    assert request["content_type"] == "application/json", label
    assert isinstance(request["status"], int), f"{label}: {request['error']}"
    assert 200 <= request["status"] < 300, (
        f"{label} returned {request['status']}: {request['response_json']}"
    )


def response_id(request: dict[str, Any]) -> str:
    body = request["response_json"]
    assert isinstance(body, dict), (
        f"{request['method']} {request['path']} returned {body!r}"
    )
    assert body.get("id"), (
        f"{request['method']} {request['path']} returned no id: {body!r}"
    )
    return str(body["id"])


def get_learning(live_server: LiveServer, learning_id: str) -> dict[str, Any]:
    response = live_server.http.get(f"/v1/learnings/{learning_id}")
    assert response.status_code == 200, (
        f"GET /v1/learnings/{learning_id} returned {response.status_code}"
    )
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="session")
def mcp_new_env() -> ClientEnv:
    return ensure_client_env(TRW_MCP_NEW)


@pytest.fixture(scope="session")
def mcp_old_env() -> ClientEnv:
    return ensure_client_env(TRW_MCP_OLD)


@pytest.fixture(scope="session")
def memory_env() -> ClientEnv:
    return ensure_client_env(TRW_MEMORY)


@pytest.fixture
def mcp_new_publish(
    mcp_new_env: ClientEnv, live_server: LiveServer, tmp_path: Path
) -> dict[str, Any]:
    """Run drivers/learnings_mcp_new.py.

    The result gains ``installation_hash`` and ``blocked_egress``.
    """
    with ClientSession(
        mcp_new_env,
        root=tmp_path,
        platform_url=live_server.url,
        api_key=live_server.api_key,
        init_project=True,
    ) as session:
        run = session.run_driver("learnings_mcp_new.py", new_marker())
        result = run.require_success()
        result["installation_hash"] = session.installation_hash
    result["blocked_egress"] = run.blocked_egress
    return result


@pytest.fixture
def mcp_old_publish(
    mcp_old_env: ClientEnv, live_server: LiveServer, tmp_path: Path
) -> dict[str, Any]:
    """Run drivers/learnings_mcp_old.py with the marker as the recall query."""
    marker = new_marker()
    with ClientSession(
        mcp_old_env,
        root=tmp_path,
        platform_url=live_server.url,
        api_key=live_server.api_key,
        init_project=True,
    ) as session:
        run = session.run_driver("learnings_mcp_old.py", marker, marker)
        result = run.require_success()
        result["installation_hash"] = session.installation_hash
    result["blocked_egress"] = run.blocked_egress
    return result


@pytest.fixture
def memory_flow(
    memory_env: ClientEnv, live_server: LiveServer, tmp_path: Path
) -> dict[str, Any]:
    """Publish a learning from another project, then run drivers/memory_remote.py.

    The result gains ``seed``, the body posted, and ``seed_id``, the server's id
    for it.
    """
    marker = new_marker()
    seed = {
        "summary": f"Shared: set HTTPX_TIMEOUT for slow mirrors {marker}",
        "detail": "Published by another project of the organization",
        "tags": [marker, "httpx"],
        "impact": 0.9,
        "source_project": "0123456789abcdef",
        "source_learning_id": f"L-seed-{marker}",
        "status": "active",
    }
    response = live_server.http.post("/v1/learnings", json=seed)
    assert response.status_code in (200, 201), (
        f"seeding POST /v1/learnings returned {response.status_code}"
    )
    seed_id = str(response.json()["id"])
    with ClientSession(
        memory_env,
        root=tmp_path,
        platform_url=live_server.url,
        api_key=live_server.api_key,
    ) as session:
        run = session.run_driver("memory_remote.py", marker, marker)
        result = run.require_success()
    result["blocked_egress"] = run.blocked_egress
    result["seed"] = seed
    result["seed_id"] = seed_id
    return result


def test_mcp_new_publisher_reports_each_step(mcp_new_publish: dict[str, Any]) -> None:
    ok = {"errors": 0, "skipped_reason": None}
    # The 0.3-impact learning is below the publisher's 0.5 threshold every time.
    assert mcp_new_publish["first"] == {
        "published": 1,
        "skipped": 1,
        "unchanged": 0,
        **ok,
    }
    assert mcp_new_publish["unchanged"] == {
        "published": 0,
        "skipped": 1,
        "unchanged": 1,
        **ok,
    }
    assert mcp_new_publish["forced"] == {
        "published": 1,
        "skipped": 1,
        "unchanged": 0,
        **ok,
    }
    assert mcp_new_publish["edited"] == {
        "published": 1,
        "skipped": 1,
        "unchanged": 0,
        **ok,
    }
    assert mcp_new_publish["blocked_egress"] == []


def test_mcp_new_publishes_same_id_three_times(mcp_new_publish: dict[str, Any]) -> None:
    posts = requests_to(mcp_new_publish, "POST", "/v1/learnings")
    assert len(posts) == 3
    for post in posts:
        assert_authenticated_json(post)
    bodies = [post["json"] for post in posts]
    for body in bodies:
        assert set(body) == MCP_PUBLISH_FIELDS
        assert body["source_learning_id"] == mcp_new_publish["edited_id"]
        assert body["source_project"] == mcp_new_publish["installation_hash"]
        assert body["status"] == "active"
        assert mcp_new_publish["marker"] in body["tags"]
        assert RECONCILE_PENDING_TAG in body["tags"]
    assert bodies[1] == bodies[0], "force=True resends the identical payload"
    assert bodies[2]["summary"] == mcp_new_publish["edited_summary"]
    assert bodies[2]["impact"] == pytest.approx(0.9)


def test_mcp_new_republish_updates_one_learning(
    mcp_new_publish: dict[str, Any], live_server: LiveServer
) -> None:
    posts = requests_to(mcp_new_publish, "POST", "/v1/learnings")
    ids = {response_id(post) for post in posts}
    assert len(ids) == 1, (
        f"each publish of one source_learning_id got its own id: {ids}"
    )

    rows = search_learnings(live_server.http, mcp_new_publish["marker"])
    same_source = [
        row
        for row in rows
        if row.get("source_learning_id") == mcp_new_publish["edited_id"]
    ]
    assert len(same_source) == 1
    assert same_source[0]["summary"] == mcp_new_publish["edited_summary"]
    assert same_source[0]["impact"] == pytest.approx(0.9)
    assert not any("Low impact note" in str(row.get("summary")) for row in rows)

    stored = get_learning(live_server, ids.pop())
    assert stored["summary"] == mcp_new_publish["edited_summary"]


def test_mcp_old_publish_and_search_requests(mcp_old_publish: dict[str, Any]) -> None:
    assert mcp_old_publish["published"] == {
        "published": 1,
        "skipped": 0,
        "unchanged": 0,
        "errors": 0,
        "skipped_reason": None,
    }
    assert mcp_old_publish["blocked_egress"] == []

    posts = requests_to(mcp_old_publish, "POST", "/v1/learnings")
    assert len(posts) == 1
    assert_authenticated_json(posts[0])
    body = posts[0]["json"]
    assert set(body) == MCP_PUBLISH_FIELDS | {"embedding"}
    # No sentence-transformers in the environment, so no vector.
    assert body["embedding"] is None
    assert body["impact"] == pytest.approx(0.5)
    assert body["source_learning_id"] == mcp_old_publish["learning_id"]
    assert body["source_project"] == mcp_old_publish["installation_hash"]

    searches = requests_to(mcp_old_publish, "POST", "/v1/learnings/search")
    assert len(searches) == 1
    assert_authenticated_json(searches[0])
    assert searches[0]["json"] == {
        "query": mcp_old_publish["query"],
        "embedding": None,
        "limit": 5,
    }


def test_mcp_old_recall_finds_published_learning(
    mcp_old_publish: dict[str, Any],
) -> None:
    # 0.62.0 reads a JSON list or an object's "results", not "items".
    # It prefixes each summary with "[shared] ".
    summary = requests_to(mcp_old_publish, "POST", "/v1/learnings")[0]["json"][
        "summary"
    ]
    recalled = [
        row
        for row in mcp_old_publish["recalled"]
        if row.get("source_learning_id") == mcp_old_publish["learning_id"]
    ]
    assert len(recalled) == 1
    assert recalled[0]["summary"] == f"[shared] {summary}"


def test_memory_publish_search_retire_requests(memory_flow: dict[str, Any]) -> None:
    assert memory_flow["blocked_egress"] == []

    posts = requests_to(memory_flow, "POST", "/v1/learnings")
    assert len(posts) == 1, "only the importance-0.9 memory is published"
    assert_authenticated_json(posts[0])
    body = posts[0]["json"]
    assert set(body) == MEMORY_PUBLISH_FIELDS
    assert body["source_learning_id"] == memory_flow["published"]["memory_id"]
    assert body["impact"] == pytest.approx(0.9)
    assert response_id(posts[0]) == memory_flow["remote_id"]

    searches = requests_to(memory_flow, "POST", "/v1/learnings/search")
    assert len(searches) == 1
    assert searches[0]["json"] == {
        "query": memory_flow["query"],
        "limit": 10,
        "min_impact": 0.7,
    }
    # trw-memory accepts search results only with status 200 exactly.
    assert searches[0]["status"] == 200

    retire_path = f"/v1/learnings/{memory_flow['remote_id']}/status"
    retires = requests_to(memory_flow, "PATCH", retire_path)
    assert len(retires) == 1
    assert_authenticated_json(retires[0])
    assert retires[0]["json"] == {"status": "obsolete"}


def test_memory_recall_includes_shared_learning(memory_flow: dict[str, Any]) -> None:
    shared = memory_flow["shared"]
    seeded = [row for row in shared if row.get("memory_id") == memory_flow["seed_id"]]
    assert len(seeded) == 1, f"shared results: {shared}"
    assert seeded[0]["content"] == f"[shared] {memory_flow['seed']['summary']}"
    assert seeded[0]["importance"] == pytest.approx(0.9)
    # The client drops shared rows that are its own published memories.
    assert not any(row.get("memory_id") == memory_flow["remote_id"] for row in shared)


def test_memory_forget_retires_remote_learning(
    memory_flow: dict[str, Any], live_server: LiveServer
) -> None:
    assert memory_flow["forgotten"]["status"] == "deleted"
    stored = get_learning(live_server, memory_flow["remote_id"])
    assert stored["status"] == "obsolete"
    assert stored["source_learning_id"] == memory_flow["published"]["memory_id"]
