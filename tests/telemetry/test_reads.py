"""Telemetry reads: stats, hourly buckets, raw events with cursors, installations."""

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.core.test_app import assert_envelope
from tests.factories import OrgWithKey, make_org_with_key

pytestmark = pytest.mark.anyio

BASE = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def raw_cursor(value: list) -> str:
    """Encode a cursor by hand, the way a client tampering with one would."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def event(minutes: int, **fields: object) -> dict:
    stamp = (BASE + timedelta(minutes=minutes)).isoformat()
    return {"event_type": "tool_invocation", "ts": stamp, **fields}


@pytest.fixture
async def seeded(client: httpx.AsyncClient, db: AsyncSession) -> OrgWithKey:
    org = await make_org_with_key(db)
    events = [
        event(
            0,
            tool_name="trw_learn",
            status="success",
            duration_ms=10,
            installation_id="i1",
        ),
        event(
            5,
            tool_name="trw_learn",
            status="error",
            duration_ms=30,
            installation_id="i1",
        ),
        event(
            70,
            tool_name="trw_recall",
            status="success",
            duration_ms=4,
            installation_id="i2",
        ),
        event(75, event_type="session_start", installation_id="i2", session_id="s1"),
        event(190, tool_name="trw_recall", status="success", installation_id="i2"),
    ]
    response = await client.post(
        "/v1/telemetry", json={"events": events}, headers=org.headers
    )
    assert response.json()["accepted"] == 5
    return org


async def test_stats_totals_by_type_status_tool(
    client: httpx.AsyncClient, seeded: OrgWithKey
) -> None:
    response = await client.get(
        "/v1/telemetry/stats",
        params={"from": "2026-12-03T00:00:00Z", "to": "2026-12-04T00:00:00Z"},
        headers=seeded.headers,
    )
    body = response.json()

    assert response.status_code == 200
    assert body["total"] == 5
    assert body["error_count"] == 1
    assert body["by_event_type"] == {"tool_invocation": 4, "session_start": 1}
    assert body["by_status"] == {"success": 3, "error": 1}
    assert body["by_tool"] == {"trw_learn": 2, "trw_recall": 2}
    learn = next(tool for tool in body["tools"] if tool["tool_name"] == "trw_learn")
    assert learn["avg_duration_ms"] == 20
    assert learn["error_count"] == 1
    assert body["from"].startswith("2026-12-03T00:00:00")


async def test_stats_window_excludes_other_hours(
    client: httpx.AsyncClient, seeded: OrgWithKey
) -> None:
    response = await client.get(
        "/v1/telemetry/stats",
        params={"from": "2026-12-03T09:00:00Z", "to": "2026-12-03T09:59:59Z"},
        headers=seeded.headers,
    )

    assert response.json()["total"] == 2


async def test_hourly_buckets_fill_empty_hours(
    client: httpx.AsyncClient, seeded: OrgWithKey
) -> None:
    response = await client.get(
        "/v1/telemetry/hourly",
        params={"from": "2026-12-03T08:00:00Z", "to": "2026-12-03T11:30:00Z"},
        headers=seeded.headers,
    )
    buckets = response.json()["buckets"]

    assert [bucket["count"] for bucket in buckets] == [2, 2, 0, 1]
    assert buckets[0]["hour"].startswith("2026-12-03T08:00:00")
    assert buckets[0]["error_count"] == 1
    assert buckets[0]["avg_duration_ms"] == 20
    assert buckets[2]["avg_duration_ms"] is None


async def test_hourly_filters_event_type(
    client: httpx.AsyncClient, seeded: OrgWithKey
) -> None:
    response = await client.get(
        "/v1/telemetry/hourly",
        params={
            "from": "2026-12-03T08:00:00Z",
            "to": "2026-12-03T09:00:00Z",
            "event_type": "session_start",
        },
        headers=seeded.headers,
    )

    assert [bucket["count"] for bucket in response.json()["buckets"]] == [0, 1]


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        (
            "/v1/telemetry/stats",
            {"from": "2026-12-04T00:00:00Z", "to": "2026-12-03T00:00:00Z"},
            "invalid_window",
        ),
        (
            "/v1/telemetry/hourly",
            {"from": "2026-01-01T00:00:00Z", "to": "2026-12-03T00:00:00Z"},
            "invalid_window",
        ),
        ("/v1/telemetry/events", {"cursor": "not-a-cursor"}, "invalid_cursor"),
        (
            "/v1/telemetry/events",
            {"cursor": raw_cursor(["2026-12-04T00:00:00+00:00", 2**63])},
            "invalid_cursor",
        ),
        (
            "/v1/telemetry/events",
            {"cursor": raw_cursor(["2026-12-04T00:00:00+00:00", 1e300])},
            "invalid_cursor",
        ),
        (
            "/v1/telemetry/events",
            {"cursor": raw_cursor(["9999-12-31T23:59:59-14:00", 1])},
            "invalid_cursor",
        ),
        (
            "/v1/telemetry/hourly",
            {"from": "9999-12-31T22:00:00Z", "to": "9999-12-31T23:59:59Z"},
            "invalid_window",
        ),
    ],
    ids=[
        "reversed-window",
        "hourly-too-long",
        "bad-cursor",
        "id-too-big",
        "id-float",
        "time-overflow",
        "hourly-at-end-of-time",
    ],
)
async def test_bad_read_parameters_rejected(
    client: httpx.AsyncClient, seeded: OrgWithKey, path: str, params: dict, code: str
) -> None:
    response = await client.get(path, params=params, headers=seeded.headers)

    assert_envelope(response, 400, code)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/telemetry/stats", {"from": "last tuesday"}),
        ("/v1/telemetry/events", {"limit": "0"}),
        ("/v1/telemetry/events", {"limit": "many"}),
        ("/v1/installations", {"page": "0"}),
        ("/v1/installations", {"page": "99999999999999999999"}),
    ],
)
async def test_wrong_type_parameters_rejected(
    client: httpx.AsyncClient, seeded: OrgWithKey, path: str, params: dict
) -> None:
    response = await client.get(path, params=params, headers=seeded.headers)

    body = assert_envelope(response, 422, "validation_error")
    assert body["detail"][0]["loc"][0] == "query"


async def test_events_newest_first_with_cursor(
    client: httpx.AsyncClient, seeded: OrgWithKey
) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get(
            "/v1/telemetry/events", params=params, headers=seeded.headers
        )
        body = response.json()
        seen.extend(item["occurred_at"] for item in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert len(seen) == 5
    assert seen == sorted(seen, reverse=True)
    assert len(set(seen)) == 5


async def test_events_filters(client: httpx.AsyncClient, seeded: OrgWithKey) -> None:
    by_tool = await client.get(
        "/v1/telemetry/events",
        params={"tool_name": "trw_recall"},
        headers=seeded.headers,
    )
    by_session = await client.get(
        "/v1/telemetry/events", params={"session_id": "s1"}, headers=seeded.headers
    )
    by_window = await client.get(
        "/v1/telemetry/events",
        params={"from": "2026-12-03T09:00:00Z", "to": "2026-12-03T10:00:00Z"},
        headers=seeded.headers,
    )

    assert [item["tool_name"] for item in by_tool.json()["items"]] == ["trw_recall"] * 2
    assert [item["event_type"] for item in by_session.json()["items"]] == [
        "session_start"
    ]
    assert len(by_window.json()["items"]) == 2


async def test_installations_listed(
    client: httpx.AsyncClient, seeded: OrgWithKey
) -> None:
    response = await client.get("/v1/installations", headers=seeded.headers)
    body = response.json()

    assert body["total"] == 2
    assert body["page"] == 1
    assert [item["installation_id"] for item in body["items"]] == ["i2", "i1"]
    assert body["items"][0]["event_count"] == 3
    assert body["items"][1]["first_seen_at"].startswith("2026-12-03T08:00:00")


async def test_other_org_sees_nothing(
    client: httpx.AsyncClient, db: AsyncSession, seeded: OrgWithKey
) -> None:
    other = await make_org_with_key(db, "Other")
    window = {"from": "2026-12-03T00:00:00Z", "to": "2026-12-04T00:00:00Z"}

    stats = await client.get(
        "/v1/telemetry/stats", params=window, headers=other.headers
    )
    hourly = await client.get(
        "/v1/telemetry/hourly", params=window, headers=other.headers
    )
    events = await client.get("/v1/telemetry/events", headers=other.headers)
    installations = await client.get("/v1/installations", headers=other.headers)

    assert stats.json()["total"] == 0
    assert all(bucket["count"] == 0 for bucket in hourly.json()["buckets"])
    assert events.json()["items"] == []
    assert installations.json()["total"] == 0


async def test_other_org_cursor_reveals_nothing(
    client: httpx.AsyncClient, db: AsyncSession, seeded: OrgWithKey
) -> None:
    first = await client.get(
        "/v1/telemetry/events", params={"limit": 1}, headers=seeded.headers
    )
    other = await make_org_with_key(db, "Other")

    response = await client.get(
        "/v1/telemetry/events",
        params={"cursor": first.json()["next_cursor"]},
        headers=other.headers,
    )

    assert response.json()["items"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/telemetry/stats",
        "/v1/telemetry/hourly",
        "/v1/telemetry/events",
        "/v1/installations",
    ],
)
async def test_reads_require_auth_and_scope(
    client: httpx.AsyncClient, db: AsyncSession, path: str
) -> None:
    writer = await make_org_with_key(db, "Writer", scopes=["telemetry:write"])

    missing = await client.get(path)
    wrong_scope = await client.get(path, headers=writer.headers)

    assert_envelope(missing, 401, "unauthorized")
    assert_envelope(wrong_scope, 403, "insufficient_scope")


async def test_limits_published(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/telemetry/limits")

    assert response.json() == {
        "max_events_per_batch": 1000,
        "max_event_bytes": 65536,
        "max_body_bytes": 8388608,
        "content_encodings": ["identity", "gzip", "deflate"],
    }


async def test_window_at_start_of_time(
    client: httpx.AsyncClient, seeded: OrgWithKey
) -> None:
    stats = await client.get(
        "/v1/telemetry/stats",
        params={"to": "0001-01-01T00:00:00Z"},
        headers=seeded.headers,
    )
    hourly = await client.get(
        "/v1/telemetry/hourly",
        params={"to": "0001-01-10T00:00:00Z"},
        headers=seeded.headers,
    )

    assert stats.status_code == 200
    assert stats.json()["total"] == 0
    assert hourly.status_code == 200
    assert len(hourly.json()["buckets"]) == 9 * 24 + 1


async def test_cursor_with_boolean_id_rejected(
    client: httpx.AsyncClient, seeded: OrgWithKey
) -> None:
    cursor = base64.urlsafe_b64encode(b'["2026-01-01",true]').decode().rstrip("=")

    response = await client.get(
        "/v1/telemetry/events", params={"cursor": cursor}, headers=seeded.headers
    )

    assert_envelope(response, 400, "invalid_cursor")
