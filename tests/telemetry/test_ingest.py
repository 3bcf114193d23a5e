"""POST /v1/telemetry: every client shape, per-event rejects, dedup, caps."""

import asyncio
import gzip
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.core.test_app import assert_envelope
from tests.factories import OrgWithKey, make_org_with_key
from trw_platform.telemetry.models import Installation, TelemetryEvent, TelemetryHourly

pytestmark = pytest.mark.anyio

URL = "/v1/telemetry"

PIPELINE_TOOL_CALL = {
    "installation_id": "0123456789abcdef",
    "framework_version": "9.5.1",
    "event_type": "tool_invocation",
    "phase": "implement",
    "ts": "2026-12-04T10:15:00+00:00",
    "tool_name": "trw_learn",
    "duration_ms": 12.5,
    "outcome": "success",
    "status": "success",
    "success": True,
    "session_id": "sess-1",
    "run_id": None,
}
LEGACY_SESSION_START = {
    "timestamp": "2026-12-04T09:00:00Z",
    "installation_id": "0123456789abcdef",
    "framework_version": "v24.0_TRW",
    "event_type": "session_start",
    "learnings_loaded": 7,
}
LEGACY_TOOL_RECORD = {
    "ts": "2026-12-04T09:01:00Z",
    "event": "tool_call",
    "tool": "trw_recall",
    "args_hash": "deadbeef",
    "duration_ms": 40,
    "result_summary": "3 results",
    "success": False,
}
INSTALLER_EVENT = {
    "event_type": "install_complete",
    "installation_id": "fedcba9876543210",
    "os_platform": "Linux",
    "python_version": "3.11.7",
    "framework_version": "9.5.1",
    "profile": "claude-code",
    "install_outcome": "success",
}


async def post(
    client: httpx.AsyncClient, org: OrgWithKey, events: list
) -> httpx.Response:
    return await client.post(URL, json={"events": events}, headers=org.headers)


async def stored(db: AsyncSession, org: OrgWithKey) -> list[TelemetryEvent]:
    query = (
        select(TelemetryEvent)
        .where(TelemetryEvent.organization_id == org.organization.id)
        .order_by(TelemetryEvent.id)
    )
    return list(await db.scalars(query))


@pytest.fixture
async def org(db: AsyncSession) -> OrgWithKey:
    return await make_org_with_key(db)


async def test_every_client_shape_stored(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    events = [
        PIPELINE_TOOL_CALL,
        LEGACY_SESSION_START,
        LEGACY_TOOL_RECORD,
        INSTALLER_EVENT,
    ]

    response = await post(client, org, events)
    rows = await stored(db, org)

    assert response.status_code == 200
    assert response.json() == {"accepted": 4, "duplicates": 0, "rejected": []}
    assert [row.event_type for row in rows] == [
        "tool_invocation",
        "session_start",
        "tool_call",
        "install_complete",
    ]
    pipeline, legacy, record, installer = rows
    assert pipeline.tool_name == "trw_learn"
    assert pipeline.duration_ms == 12.5
    assert pipeline.occurred_at == datetime(2026, 12, 4, 10, 15, tzinfo=UTC)
    assert pipeline.payload == {"outcome": "success", "success": True, "run_id": None}
    assert legacy.occurred_at == datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    assert legacy.payload == {"learnings_loaded": 7}
    assert record.tool_name == "trw_recall"
    assert record.status == "error"
    assert record.payload["event"] == "tool_call"
    assert installer.os_platform == "Linux"
    assert installer.payload["install_outcome"] == "success"


async def test_event_without_any_type_is_unknown(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    response = await post(client, org, [{"foo": "bar"}])

    rows = await stored(db, org)
    assert response.json()["accepted"] == 1
    assert rows[0].event_type == "unknown"
    assert rows[0].payload == {"foo": "bar"}


async def test_numbers_as_strings_and_floats_coerced(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    event = {
        "event_type": "session_end",
        "duration_ms": "1500.5",
        "input_tokens": 42.0,
        "output_tokens": "17",
        "test_count": "many",
        "mypy_passed": "true",
        "ceremony_score": "NaN",
        "installation_id": 1234567890123456,
    }

    response = await post(client, org, [event])
    row = (await stored(db, org))[0]

    assert response.json()["accepted"] == 1
    assert row.duration_ms == 1500.5
    assert row.input_tokens == 42
    assert row.output_tokens == 17
    assert row.test_count is None
    assert row.mypy_passed is True
    assert row.ceremony_score is None
    assert row.installation_id == "1234567890123456"
    assert row.payload == {"test_count": "many", "ceremony_score": "NaN"}


async def test_bad_events_rejected_alone(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    deep: object = "leaf"
    for _ in range(40):
        deep = [deep]
    events = [
        PIPELINE_TOOL_CALL,
        "not an object",
        {"event_type": "x", "event_id": {"nested": True}},
        {"event_type": "x", "event_id": "e" * 129},
        [1, 2],
        {"event_type": "x", "deep": deep},
        {"event_type": "x", "note": "nul\u0000byte"},
        LEGACY_TOOL_RECORD,
    ]

    response = await post(client, org, events)
    body = response.json()

    assert response.status_code == 200
    assert body["accepted"] == 2
    assert [item["index"] for item in body["rejected"]] == [1, 2, 3, 4, 5, 6]
    reasons = [item["reason"] for item in body["rejected"]]
    assert "JSON object" in reasons[0]
    assert "event_id" in reasons[1]
    assert "event_id" in reasons[2]
    assert "deeper than 32" in reasons[4]
    assert "NUL" in reasons[5]
    assert len(await stored(db, org)) == 2


async def test_misfit_known_fields_kept_in_payload(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    event = {
        "event_type": 123,
        "session_id": {"nested": True},
        "tool_name": "t" * 201,
        "status": "s" * 33,
        "ts": None,
        "timestamp": "2026-12-01T00:00:00Z",
    }

    response = await post(client, org, [event, {"event_type": "e" * 150}])
    first, second = await stored(db, org)

    assert response.json()["accepted"] == 2
    assert first.event_type == "unknown"
    assert first.session_id is None
    assert first.tool_name is None
    assert first.occurred_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert first.payload == {
        "event_type": 123,
        "session_id": {"nested": True},
        "tool_name": "t" * 201,
        "status": "s" * 33,
    }
    assert second.event_type == "e" * 100
    assert second.payload == {"event_type": "e" * 150}


@pytest.mark.parametrize(
    "raw_event",
    [
        b'{"event_type": "x", "n": NaN}',
        b'{"event_type": "x", "n": 1e400}',
        b'{"event_type": "x", "n": -Infinity}',
        b'{"event_type": "x", "n": ' + b"9" * 5000 + b"}",
    ],
    ids=["nan", "overflow", "infinity", "5000-digits"],
)
async def test_unstorable_numbers_kept_as_text(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey, raw_event: bytes
) -> None:
    body = b'{"events": [' + raw_event + b', {"event_type": "y"}]}'
    headers = {**org.headers, "content-type": "application/json"}

    response = await client.post(URL, content=body, headers=headers)
    rows = await stored(db, org)

    assert response.status_code == 200
    assert response.json()["accepted"] == 2
    assert isinstance(rows[0].payload["n"], str)
    assert rows[0].payload["n"] == raw_event.split(b": ", 2)[-1].rstrip(b"}").decode()


async def test_lone_surrogate_rejected_alone(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    body = b'{"events": [{"event_type": "x", "s": "\\ud800"}, {"event_type": "y"}]}'
    headers = {**org.headers, "content-type": "application/json"}

    response = await client.post(URL, content=body, headers=headers)
    listing = await client.get("/v1/telemetry/events", headers=org.headers)

    assert response.json()["accepted"] == 1
    assert "surrogate" in response.json()["rejected"][0]["reason"]
    assert listing.status_code == 200
    assert [item["event_type"] for item in listing.json()["items"]] == ["y"]


async def test_exact_integers_in_columns(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    event = {
        "event_type": "x",
        "input_tokens": 9007199254740993,
        "output_tokens": "9007199254740993",
        "test_count": 2**63 - 1,
    }

    await post(client, org, [event, {"event_type": "y", "test_count": 2**63}])
    first, second = await stored(db, org)

    assert first.input_tokens == 9007199254740993
    assert first.output_tokens == 9007199254740993
    assert first.test_count == 2**63 - 1
    assert second.test_count is None
    assert second.payload["test_count"] == 2**63


async def test_ancient_events_listed_by_default(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    await post(client, org, [{"event_type": "old", "ts": "0001-01-01T00:00:00Z"}])

    response = await client.get("/v1/telemetry/events", headers=org.headers)

    assert [item["event_type"] for item in response.json()["items"]] == ["old"]


async def test_unknown_installation_not_listed(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    await post(
        client, org, [{"event_type": "first_session", "installation_id": "unknown"}]
    )

    response = await client.get("/v1/installations", headers=org.headers)

    assert response.json()["total"] == 0


@pytest.mark.parametrize(
    ("members", "status"),
    [
        ([b'{"events": [{"event_type": "a"}', b', {"event_type": "b"}]}'], 200),
        ([b'{"events": []}', None], 400),
    ],
    ids=["two-members", "trailing-garbage"],
)
async def test_gzip_members_and_garbage(
    client: httpx.AsyncClient, org: OrgWithKey, members: list, status: int
) -> None:
    body = b"".join(gzip.compress(part) if part else b"garbage" for part in members)
    headers = {
        **org.headers,
        "content-type": "application/json",
        "content-encoding": "gzip",
    }

    response = await client.post(URL, content=body, headers=headers)

    assert response.status_code == status
    if status == 200:
        assert response.json()["accepted"] == 2


async def test_truncated_gzip_rejected(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    body = gzip.compress(b'{"events": []}')[:-8]
    headers = {
        **org.headers,
        "content-type": "application/json",
        "content-encoding": "gzip",
    }

    response = await client.post(URL, content=body, headers=headers)

    assert_envelope(response, 400, "invalid_encoding")


async def test_oversized_event_rejected_alone(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    huge = {"event_type": "x", "blob": "y" * 70_000}

    response = await post(client, org, [huge, PIPELINE_TOOL_CALL])

    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 0
    assert "65536" in body["rejected"][0]["reason"]


async def test_event_id_stored_once_across_batches(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    batch = [
        {"event_id": "evt_1", "event_type": "probe"},
        {"event_id": "evt_1", "event_type": "probe"},
        {"event_id": "evt_2", "event_type": "probe"},
    ]

    first = await post(client, org, batch)
    replay = await post(client, org, batch)

    assert first.json() == {"accepted": 2, "duplicates": 1, "rejected": []}
    assert replay.json() == {"accepted": 0, "duplicates": 3, "rejected": []}
    assert len(await stored(db, org)) == 2
    stats = await client.get("/v1/telemetry/stats", headers=org.headers)
    assert stats.json()["by_event_type"] == {"probe": 2}


async def test_same_event_id_in_two_orgs_both_stored(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    other = await make_org_with_key(db, "Other")
    event = {"event_id": "evt_shared", "event_type": "probe"}

    first = await post(client, org, [event])
    second = await post(client, other, [event])

    assert first.json()["accepted"] == 1
    assert second.json()["accepted"] == 1


async def test_first_session_once_per_installation(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    first = {"event_type": "first_session", "installation_id": "aaaa", "profile": "x"}
    second_install = {**first, "installation_id": "bbbb"}

    await post(client, org, [first])
    response = await post(client, org, [first, second_install])

    assert response.json() == {"accepted": 1, "duplicates": 1, "rejected": []}
    rows = await stored(db, org)
    assert sorted(row.installation_id for row in rows) == ["aaaa", "bbbb"]


async def test_future_timestamp_clamped_and_flagged(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    near = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()

    await post(
        client,
        org,
        [{"event_type": "x", "ts": future}, {"event_type": "y", "ts": near}],
    )
    far_row, near_row = await stored(db, org)

    assert far_row.clock_clamped is True
    assert far_row.occurred_at == far_row.received_at
    assert far_row.payload["client_timestamp"].startswith(future[:16])
    assert near_row.clock_clamped is False


async def test_unparseable_timestamp_kept_in_payload(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    await post(client, org, [{"event_type": "x", "ts": "yesterday"}])

    row = (await stored(db, org))[0]
    assert row.payload["unparsed_timestamp"] == "yesterday"
    assert row.occurred_at == row.received_at


async def test_gzip_body_accepted(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    body = gzip.compress(json.dumps({"events": [PIPELINE_TOOL_CALL] * 3}).encode())
    headers = {
        **org.headers,
        "content-type": "application/json",
        "content-encoding": "gzip",
    }

    response = await client.post(URL, content=body, headers=headers)

    assert response.json()["accepted"] == 3


async def test_gzip_bomb_rejected(client: httpx.AsyncClient, org: OrgWithKey) -> None:
    payload = b'{"events": [' + b" " * (9 * 1024 * 1024) + b"]}"
    headers = {
        **org.headers,
        "content-type": "application/json",
        "content-encoding": "gzip",
    }

    response = await client.post(URL, content=gzip.compress(payload), headers=headers)

    assert_envelope(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b'{"events": {"a": 1}}', "application/json", 400, "invalid_batch"),
        (b'{"no_events": []}', "application/json", 400, "invalid_batch"),
        (b"[]", "application/json", 400, "invalid_batch"),
        (
            b"events=1",
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
        ),
        (b"\x1f\x8b broken", "application/json", 400, "invalid_json"),
    ],
    ids=["not-json", "events-object", "no-events", "top-level-list", "form", "binary"],
)
async def test_envelope_faults_fail_request(
    client: httpx.AsyncClient,
    db: AsyncSession,
    org: OrgWithKey,
    content: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    headers = {**org.headers, "content-type": content_type}

    response = await client.post(URL, content=content, headers=headers)

    assert_envelope(response, status, code)
    assert await stored(db, org) == []


async def test_unknown_encoding_rejected(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    headers = {
        **org.headers,
        "content-type": "application/json",
        "content-encoding": "br",
    }

    response = await client.post(URL, content=b"{}", headers=headers)

    assert_envelope(response, 415, "unsupported_media_type")


async def test_too_many_events_rejected(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    response = await post(client, org, [{"event_type": "x"}] * 1001)

    body = assert_envelope(response, 413, "payload_too_large")
    assert "1001" in body["detail"]
    assert await stored(db, org) == []


async def test_empty_batch_accepted(client: httpx.AsyncClient, org: OrgWithKey) -> None:
    response = await post(client, org, [])

    assert response.json() == {"accepted": 0, "duplicates": 0, "rejected": []}


async def test_missing_auth_stores_nothing(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    response = await client.post(URL, json={"events": [PIPELINE_TOOL_CALL]})

    assert_envelope(response, 401, "unauthorized")
    assert await stored(db, org) == []


async def test_read_only_key_cannot_write(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    reader = await make_org_with_key(db, "Reader", scopes=["telemetry:read"])

    response = await post(client, reader, [PIPELINE_TOOL_CALL])

    body = assert_envelope(response, 403, "insufficient_scope")
    assert "telemetry:write" in body["detail"]


async def test_rollups_match_raw_events(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    events = [
        {**PIPELINE_TOOL_CALL, "duration_ms": 10},
        {**PIPELINE_TOOL_CALL, "duration_ms": 30, "status": "error"},
        {**PIPELINE_TOOL_CALL, "ts": "2026-12-04T11:59:59Z", "duration_ms": 5},
        LEGACY_TOOL_RECORD,
    ]

    await post(client, org, events)
    await post(client, org, events[:1])

    raw_total = await db.scalar(
        select(func.count()).where(
            TelemetryEvent.organization_id == org.organization.id
        )
    )
    rollup_total = await db.scalar(
        select(func.sum(TelemetryHourly.event_count)).where(
            TelemetryHourly.organization_id == org.organization.id
        )
    )
    ten_oclock = await db.scalar(
        select(func.sum(TelemetryHourly.duration_ms_sum)).where(
            TelemetryHourly.organization_id == org.organization.id,
            TelemetryHourly.hour == datetime(2026, 12, 4, 10, tzinfo=UTC),
        )
    )
    assert raw_total == rollup_total == 5
    assert ten_oclock == 50


async def test_installations_tracked_on_write(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    early = {**LEGACY_SESSION_START, "timestamp": "2026-12-01T08:00:00Z"}

    await post(client, org, [LEGACY_SESSION_START, INSTALLER_EVENT])
    await post(client, org, [early, PIPELINE_TOOL_CALL])

    rows = {
        row.installation_id: row
        for row in await db.scalars(
            select(Installation).where(
                Installation.organization_id == org.organization.id
            )
        )
    }
    main = rows["0123456789abcdef"]
    assert main.event_count == 3
    assert main.first_seen_at == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert main.last_seen_at == datetime(2026, 12, 4, 10, 15, tzinfo=UTC)
    assert main.framework_version == "9.5.1"
    assert rows["fedcba9876543210"].os_platform == "Linux"


async def test_huge_integer_kept_in_payload(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    huge = b'{"event_type": "x", "n": 123456789012345678901234567890}'
    body = b'{"events": [' + huge + b', {"event_type": "y"}]}'
    headers = {**org.headers, "content-type": "application/json"}

    response = await client.post(URL, content=body, headers=headers)

    assert response.status_code == 200
    assert response.json()["accepted"] == 2
    rows = await stored(db, org)
    assert rows[0].payload == {"n": 123456789012345678901234567890}


async def test_deeply_nested_body_rejected(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    body = b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    headers = {**org.headers, "content-type": "application/json"}

    response = await client.post(URL, content=body, headers=headers)

    assert_envelope(response, 400, "invalid_json")


async def test_body_over_telemetry_cap_rejected(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    body = b'{"events": [], "padding": "' + b"p" * (9 * 1024 * 1024) + b'"}'
    headers = {**org.headers, "content-type": "application/json"}

    response = await client.post(URL, content=body, headers=headers)

    body_error = assert_envelope(response, 413, "payload_too_large")
    assert "8388608" in body_error["detail"]


async def test_slow_body_does_not_block_other_writers(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    # A key used for the first time writes its last use: that write must not
    # hold the database while the body of its own request is still arriving.
    slow_org = await make_org_with_key(db, "Slow")
    release = asyncio.Event()

    async def slow_body():  # type: ignore[no-untyped-def]
        yield b'{"events": [{"event_type": "slow"'
        await release.wait()
        yield b"}]}"

    headers = {**slow_org.headers, "content-type": "application/json"}
    slow = asyncio.create_task(client.post(URL, content=slow_body(), headers=headers))
    await asyncio.sleep(0.3)
    try:
        async with asyncio.timeout(10):
            fast = await post(client, org, [PIPELINE_TOOL_CALL])
    finally:
        release.set()
    slow_response = await slow

    assert fast.status_code == 200
    assert fast.json()["accepted"] == 1
    assert slow_response.json()["accepted"] == 1


async def test_partly_stored_batch_counts_only_new_rows(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    def event(event_id: str | None, tool: str) -> dict:
        body = {**PIPELINE_TOOL_CALL, "tool_name": tool, "duration_ms": 1}
        if event_id is not None:
            body["event_id"] = event_id
        return body

    await post(client, org, [event("a", "old"), event("c", "old")])
    mixed = [
        event("a", "old"),
        event(None, "new"),
        event("b", "new"),
        event("c", "old"),
        event(None, "new"),
        event("d", "new"),
    ]
    response = await post(client, org, mixed)

    assert response.json() == {"accepted": 4, "duplicates": 2, "rejected": []}
    rows = await stored(db, org)
    assert sorted(row.event_id or "-" for row in rows) == ["-", "-", "a", "b", "c", "d"]
    stats = await client.get(
        "/v1/telemetry/stats",
        params={"from": "2026-12-01T00:00:00Z", "to": "2026-12-05T00:00:00Z"},
        headers=org.headers,
    )
    assert stats.json()["by_tool"] == {"old": 2, "new": 4}
    installation = await db.get(
        Installation, (org.organization.id, PIPELINE_TOOL_CALL["installation_id"])
    )
    assert installation is not None
    assert installation.event_count == 6


async def test_too_many_gzip_members_rejected(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    body = gzip.compress(b'{"events": []}') + gzip.compress(b"") * 64
    headers = {
        **org.headers,
        "content-type": "application/json",
        "content-encoding": "gzip",
    }

    response = await client.post(URL, content=body, headers=headers)

    body = assert_envelope(response, 400, "invalid_encoding")
    assert "64 members" in body["detail"]


async def test_first_session_once_despite_event_ids(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    first = {"event_type": "first_session", "installation_id": "cccc"}

    responses = [
        await post(client, org, [{**first, "event_id": "fs-a"}]),
        await post(client, org, [{**first, "event_id": "fs-b"}]),
        await post(client, org, [first]),
    ]

    assert [r.json()["accepted"] for r in responses] == [1, 0, 0]
    assert len(await stored(db, org)) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/v1/telemetry/events?status=%00",
        "/v1/telemetry/hourly?event_type=a%00b",
        "/v1/learnings/%00",
        "/v1/learnings?text=%00",
    ],
)
async def test_nul_in_path_or_query_rejected(
    client: httpx.AsyncClient, org: OrgWithKey, path: str
) -> None:
    response = await client.get(path, headers=org.headers)

    assert_envelope(response, 400, "invalid_request")
