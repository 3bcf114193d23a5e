"""The real trw-mcp telemetry senders (0.62.0 and 9.5.1) against a live server.

Each test runs one driver from ``drivers/`` in a fresh project, takes the
events from the client's own successful ``POST /v1/telemetry`` requests, and
checks that ``GET /v1/telemetry/events`` and ``GET /v1/telemetry/stats`` show
exactly those events. Server state is compared before and after the run, so
the tests also hold when the organization already has events.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from .clients import (
    TRW_MCP_NEW,
    TRW_MCP_OLD,
    ClientEnv,
    ClientSession,
    ensure_client_env,
)
from .server_api import (
    LiveServer,
    counter_increase,
    get_telemetry_stats,
    list_telemetry_events,
    named_counts,
)

pytestmark = pytest.mark.e2e

#: Fields that ``MAPPED_FIELDS`` in the clients' ``trw_mcp/telemetry/constants.py``
#: (the same in 0.62.0 and 9.5.1) lists as backend columns. Every
#: other field of a sent event is expected in the stored ``payload``.
MAPPED_FIELDS = frozenset(
    {
        "installation_id", "event_type", "session_id", "framework_version",
        "python_version", "os_platform", "tool_name", "duration_ms", "status",
        "error_type", "phase", "ceremony_score", "input_tokens", "output_tokens",
        "cost_usd", "pytest_passed", "test_count", "coverage_pct",
        "static_checks_passed", "mypy_passed", "attributes",
    }
)  # fmt: skip
#: Fields the server turns into ``occurred_at`` and ``event_type`` instead of payload.
TIME_FIELDS = ("ts", "timestamp")
LEGACY_EVENT_FIELD = "event"
#: The client's own event id (``evt_<hex>``, sent by some producers only): stored
#: as the ``event_id`` column because it is the only natural deduplication key.
CLIENT_EVENT_ID = "event_id"
#: Stored times may lose sub-millisecond digits.
TIME_TOLERANCE_S = 0.001

#: The run id and tool of the pre-consent rows that drivers/telemetry_mcp_old.py queues.
PRE_CONSENT_RUN_ID = "run-before-consent"
PRE_CONSENT_TOOL = "trw_before_consent"


@dataclass
class Delivery:
    """One driver run: what the client reported and sent, and what the server stored."""

    client: str
    result: dict[str, Any]
    installation_hash: str
    requests: list[dict[str, Any]]
    sent: list[dict[str, Any]]
    stored: list[dict[str, Any]]
    stats_before: dict[str, Any]
    stats_after: dict[str, Any]
    blocked_egress: list[str]


#: Deliveries by (client, driver, server URL, API key). A test reuses a run made
#: against the same organization, so a server fixture with a wider scope costs
#: one driver run per client instead of one per test.
_deliveries: dict[tuple[str, str, str, str], Delivery] = {}


def deliver(
    env: ClientEnv, live_server: LiveServer, root: Path, driver: str
) -> Delivery:
    """Return the delivery of *driver* to this organization, running it on first use."""
    key = (env.spec.key, driver, live_server.url, live_server.api_key)
    if key not in _deliveries:
        _deliveries[key] = run_delivery(env, live_server, root, driver)
    return _deliveries[key]


def run_delivery(
    env: ClientEnv, live_server: LiveServer, root: Path, driver: str
) -> Delivery:
    """Run a telemetry driver; collect the events it sent and the server's new ones."""
    known_ids = {row_id(event) for event in list_telemetry_events(live_server.http)}
    stats_before = get_telemetry_stats(live_server.http)
    with ClientSession(
        env,
        root=root,
        platform_url=live_server.url,
        api_key=live_server.api_key,
        init_project=True,
    ) as session:
        run = session.run_driver(driver)
        installation_hash = session.installation_hash
    result = run.require_success()
    requests: list[dict[str, Any]] = list(result["requests"])  # type: ignore[call-overload]
    sent = [
        event
        for request in requests
        if request["path"] == "/v1/telemetry"
        and isinstance(request["status"], int)
        and 200 <= request["status"] < 300
        for event in request["json"]["events"]
    ]
    stored = [
        event
        for event in list_telemetry_events(live_server.http)
        if row_id(event) not in known_ids
    ]
    return Delivery(
        client=env.spec.key,
        result=result,
        installation_hash=installation_hash,
        requests=requests,
        sent=sent,
        stored=stored,
        stats_before=stats_before,
        stats_after=get_telemetry_stats(live_server.http),
        blocked_egress=run.blocked_egress,
    )


def row_id(stored: dict[str, Any]) -> object:
    """Return ``id``, the server's identifier of a stored event row.

    ``event_id`` is the client's own optional id and is often null.
    """
    return stored["id"]


def expected_event_type(sent: dict[str, Any]) -> str:
    """Return the type to store: ``event_type``, else the legacy ``event`` name."""
    return str(sent.get("event_type") or sent.get(LEGACY_EVENT_FIELD))


def expected_tool_name(sent: dict[str, Any]) -> str | None:
    """Return the tool to store: ``tool_name``, else the legacy record's ``tool``."""
    tool = sent.get("tool_name") or sent.get("tool")
    return str(tool) if tool else None


def signature(
    event_type: object, tool_name: object, duration_ms: object
) -> tuple[object, object, object]:
    duration = None if duration_ms is None else round(float(duration_ms), 3)  # type: ignore[arg-type]
    return (event_type, tool_name, duration)


def sent_signature(sent: dict[str, Any]) -> tuple[object, object, object]:
    return signature(
        expected_event_type(sent), expected_tool_name(sent), sent.get("duration_ms")
    )


def stored_signature(stored: dict[str, Any]) -> tuple[object, object, object]:
    return signature(
        stored.get("event_type"), stored.get("tool_name"), stored.get("duration_ms")
    )


def pair_events(
    sent: list[dict[str, Any]], stored: list[dict[str, Any]]
) -> tuple[
    list[tuple[dict[str, Any], dict[str, Any]]],
    list[dict[str, Any]],
    list[dict[str, Any]],
]:
    """Pair each sent event with a stored one of the same type, tool and duration.

    Among stored events with that signature, the one whose ``occurred_at`` is
    nearest the sent time wins, because two tool calls can take the same time.
    Returns the pairs, the sent events without a stored match and the stored
    events without a sent match.
    """
    by_signature: dict[tuple[object, object, object], list[dict[str, Any]]] = (
        defaultdict(list)
    )
    for event in stored:
        by_signature[stored_signature(event)].append(event)
    pairs = []
    unmatched_sent = []
    for event in sent:
        candidates = by_signature.get(sent_signature(event))
        if candidates:
            sent_at = parse_time(sent_time(event))
            nearest = min(
                candidates,
                key=lambda row: abs(parse_time(row["occurred_at"]) - sent_at),
            )
            candidates.remove(nearest)
            pairs.append((event, nearest))
        else:
            unmatched_sent.append(event)
    unmatched_stored = [event for events in by_signature.values() for event in events]
    return pairs, unmatched_sent, unmatched_stored


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def sent_time(sent: dict[str, Any]) -> str:
    """Return the event's own time: ``ts`` (pipeline, tool_call) or ``timestamp``."""
    return str(next(sent[name] for name in TIME_FIELDS if name in sent))


@pytest.fixture(scope="session")
def mcp_new_env() -> ClientEnv:
    return ensure_client_env(TRW_MCP_NEW)


@pytest.fixture(scope="session")
def mcp_old_env() -> ClientEnv:
    return ensure_client_env(TRW_MCP_OLD)


@pytest.fixture
def new_delivery(
    mcp_new_env: ClientEnv, live_server: LiveServer, tmp_path: Path
) -> Delivery:
    return deliver(mcp_new_env, live_server, tmp_path, "telemetry_mcp_new.py")


@pytest.fixture
def old_delivery(
    mcp_old_env: ClientEnv, live_server: LiveServer, tmp_path: Path
) -> Delivery:
    return deliver(mcp_old_env, live_server, tmp_path, "telemetry_mcp_old.py")


@pytest.fixture(params=["trw-mcp-9.5.1", "trw-mcp-0.62.0"])
def delivery(request: pytest.FixtureRequest) -> Delivery:
    name = "new_delivery" if request.param == "trw-mcp-9.5.1" else "old_delivery"
    fixture: Delivery = request.getfixturevalue(name)
    return fixture


def test_mcp_new_reports_success(new_delivery: Delivery) -> None:
    result = new_delivery.result
    assert result["legacy_written"] == 6
    assert result["batch_sender"] == {
        "sent": 6,
        "failed": 0,
        "remaining": 0,
        "skipped_reason": None,
    }
    assert result["queue_after_send"] == []
    assert result["pipeline"]["sent"] == 3
    assert result["pipeline"]["failed"] == 0


def test_mcp_old_reports_success(old_delivery: Delivery) -> None:
    result = old_delivery.result
    assert result["legacy_written"] == 5
    # Five TelemetryEvent rows and three tool_call records are sent.
    # The two pre-consent rows are dropped.
    assert result["batch_sender"] == {
        "sent": 8,
        "failed": 0,
        "remaining": 0,
        "skipped_reason": None,
    }
    assert result["queue_after_send"] == []
    assert result["pipeline"]["sent"] == 3
    assert result["pipeline"]["failed"] == 0


def test_client_requests_reach_only_server(
    delivery: Delivery, live_server: LiveServer
) -> None:
    assert delivery.blocked_egress == [], (
        f"{delivery.client} tried to reach another host"
    )
    for request in delivery.requests:
        assert request["url"].startswith(f"{live_server.url}/v1/"), (
            f"{delivery.client} requested {request['url']}"
        )
        assert request["error"] is None, (
            f"{request['method']} {request['url']} failed: {request['error']}"
        )


def test_telemetry_requests_are_authenticated_json(delivery: Delivery) -> None:
    telemetry = [
        request for request in delivery.requests if request["path"] == "/v1/telemetry"
    ]
    # One legacy-queue batch and one pipeline batch.
    assert len(telemetry) == 2, [request["url"] for request in delivery.requests]
    for request in telemetry:
        assert request["method"] == "POST"
        assert request["authorization"] == "Bearer <configured key>"
        assert request["content_type"] == "application/json"
        assert 200 <= request["status"] < 300, request["response_json"]
        assert len(request["json"]["events"]) <= 100


def test_stored_events_match_sent(delivery: Delivery) -> None:
    assert len(delivery.stored) == len(delivery.sent)
    pairs, unmatched_sent, unmatched_stored = pair_events(
        delivery.sent, delivery.stored
    )
    assert unmatched_sent == [], (
        "sent but not stored (type, tool, duration): "
        f"{[sent_signature(e) for e in unmatched_sent]}"
    )
    assert unmatched_stored == [], (
        f"stored but not sent: {[stored_signature(e) for e in unmatched_stored]}"
    )
    for sent, stored in pairs:
        label = f"{delivery.client} {sent_signature(sent)}"
        for field in ("status", "session_id", "installation_id", CLIENT_EVENT_ID):
            if field in sent:
                assert stored[field] == sent[field], f"{label}: {field}"
        sent_at = sent_time(sent)
        drift = parse_time(stored["occurred_at"]) - parse_time(sent_at)
        assert abs(drift.total_seconds()) <= TIME_TOLERANCE_S, (
            f"{label}: occurred_at {stored['occurred_at']} for {sent_at}"
        )


def test_stored_payload_keeps_unmapped_fields(delivery: Delivery) -> None:
    pairs, unmatched_sent, _ = pair_events(delivery.sent, delivery.stored)
    assert unmatched_sent == [], (
        "some sent events have no stored match;"
        " test_stored_events_match_sent names them"
    )
    for sent, stored in pairs:
        label = f"{delivery.client} {sent_signature(sent)}"
        payload = stored["payload"]
        assert isinstance(payload, dict), f"{label}: payload is {payload!r}"
        for field, value in sent.items():
            if (
                field in MAPPED_FIELDS
                or field in TIME_FIELDS
                or field in (LEGACY_EVENT_FIELD, CLIENT_EVENT_ID)
            ):
                continue
            assert payload.get(field) == value, f"{label}: payload[{field!r}]"


def test_hashed_installation_id_is_stored(delivery: Delivery) -> None:
    with_installation = [event for event in delivery.sent if "installation_id" in event]
    # TelemetryEvent rows and pipeline events carry it, tool_call records do not.
    assert len(with_installation) >= 6
    for event in with_installation:
        assert event["installation_id"] == delivery.installation_hash
    stored_ids = Counter(
        event["installation_id"]
        for event in delivery.stored
        if event["installation_id"]
    )
    assert stored_ids == Counter({delivery.installation_hash: len(with_installation)})


def test_stats_count_sent_events(delivery: Delivery) -> None:
    before, after = delivery.stats_before, delivery.stats_after
    assert after["total"] - before["total"] == len(delivery.sent)

    expected_types = Counter(expected_event_type(event) for event in delivery.sent)
    assert (
        counter_increase(after["by_event_type"], before["by_event_type"])
        == expected_types
    )

    expected_tools = named_counts(
        Counter(expected_tool_name(event) for event in delivery.sent).items()
    )
    tools = named_counts(counter_increase(after["by_tool"], before["by_tool"]).items())
    assert tools == expected_tools

    # The statuses in the stats must be the statuses of the stored events.
    expected_statuses = named_counts(
        Counter(event["status"] for event in delivery.stored).items()
    )
    statuses = named_counts(
        counter_increase(after["by_status"], before["by_status"]).items()
    )
    assert statuses == expected_statuses


def test_events_filter_by_event_type(
    delivery: Delivery, live_server: LiveServer
) -> None:
    new_ids = {row_id(event) for event in delivery.stored}
    first_sessions = [
        event
        for event in list_telemetry_events(live_server.http, event_type="first_session")
        if row_id(event) in new_ids
    ]
    assert len(first_sessions) == 1
    assert first_sessions[0]["event_type"] == "first_session"
    sent_profile = next(
        e["profile"] for e in delivery.sent if e.get("event_type") == "first_session"
    )
    assert first_sessions[0]["payload"].get("profile") == sent_profile


def test_mcp_new_sends_each_event_type(new_delivery: Delivery) -> None:
    types = Counter(expected_event_type(event) for event in new_delivery.sent)
    assert types == Counter(
        {
            "first_session": 1,
            "session_start": 1,
            "ceremony_compliance": 1,
            "session_end": 1,
            # Two from the legacy queue, three from the pipeline.
            "tool_invocation": 5,
        }
    )
    pipeline = [
        event
        for event in new_delivery.sent
        if event.get("session_id") == "sess-e2e-new"
    ]
    assert Counter(event["tool_name"] for event in pipeline) == Counter(
        {"trw_checkpoint": 2, "trw_status": 1}
    )
    failed = next(event for event in pipeline if event["tool_name"] == "trw_status")
    assert failed["status"] == "error"
    assert failed["error_type"] == "RuntimeError"


def test_mcp_old_tool_call_records_get_derived_type(old_delivery: Delivery) -> None:
    records = [
        event
        for event in old_delivery.sent
        if event.get(LEGACY_EVENT_FIELD) == "tool_call"
    ]
    assert len(records) == 3
    assert all("event_type" not in record for record in records)
    stored = [
        event for event in old_delivery.stored if event["event_type"] == "tool_call"
    ]
    assert sorted(stored_signature(event) for event in stored) == sorted(
        sent_signature(r) for r in records
    )
    for event in stored:
        assert event["tool_name"] in {"trw_recall", "trw_learn"}
        assert isinstance(event["payload"].get("args_hash"), str)


def test_mcp_old_never_sends_pre_consent_rows(old_delivery: Delivery) -> None:
    queued = old_delivery.result["legacy_queue"]
    assert any(row.get("run_id") == PRE_CONSENT_RUN_ID for row in queued)
    assert any(row.get("tool") == PRE_CONSENT_TOOL for row in queued)
    assert not any(
        event.get("run_id") == PRE_CONSENT_RUN_ID for event in old_delivery.sent
    )
    assert not any(event.get("tool") == PRE_CONSENT_TOOL for event in old_delivery.sent)
    assert not any(
        event.get("tool_name") == PRE_CONSENT_TOOL for event in old_delivery.stored
    )
