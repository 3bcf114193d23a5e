"""Device sign-in (RFC 8628): codes, polling, approval, denial and the CLI."""

import re
from datetime import timedelta

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from tests.auth.helpers import bearer, fetch_all, sign_in
from tests.core.test_app import assert_envelope
from tests.factories import make_org_with_key, make_user
from trw_platform.auth.models import DeviceAuthorization
from trw_platform.cli import app as cli_app
from trw_platform.core.audit import AuditEvent
from trw_platform.core.db import utc_now
from trw_platform.core.settings import get_settings
from trw_platform.orgs.models import ApiKey

pytestmark = [pytest.mark.anyio, pytest.mark.accounts]

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")


async def start(client: httpx.AsyncClient, client_id: str = "trw-cli") -> dict:
    response = await client.post("/v1/auth/device/code", json={"client_id": client_id})
    assert response.status_code == 200, response.text
    return response.json()


async def poll(client: httpx.AsyncClient, device_code: str, **overrides: str):
    body = {"client_id": "trw-cli", "device_code": device_code, "grant_type": GRANT}
    return await client.post("/v1/auth/device/token", json=body | overrides)


async def forget_last_poll(app: FastAPI) -> None:
    """Move the last poll back by a minute, as if the client had waited."""
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(DeviceAuthorization).values(
                last_polled_at=utc_now() - timedelta(minutes=1)
            )
        )
        await session.commit()


async def test_code_response_fields(client: httpx.AsyncClient) -> None:
    code = await start(client)

    assert USER_CODE.match(code["user_code"])
    assert code["interval"] == 5
    assert code["expires_in"] == 900
    assert code["verification_uri"] == "http://testserver/device"
    assert code["verification_uri_complete"] == (
        f"http://testserver/device?user_code={code['user_code']}"
    )
    assert len(code["device_code"]) >= 40


async def test_code_accepts_form_encoding(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/device/code", data={"client_id": "cli"})

    assert response.status_code == 200


@pytest.mark.parametrize("body", [{}, {"client_id": ""}, {"client_id": "a b<c>"}])
async def test_code_rejects_bad_client_id(
    client: httpx.AsyncClient, body: dict
) -> None:
    response = await client.post("/v1/auth/device/code", json=body)

    body = assert_envelope(response, 400, "invalid_request")
    assert "client_id" in body["detail"]


async def test_poll_pending_then_slow_down(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    code = await start(client)

    pending = await poll(client, code["device_code"])
    fast = await poll(client, code["device_code"])
    await forget_last_poll(app)
    later = await poll(client, code["device_code"])

    assert_envelope(pending, 400, "authorization_pending")
    body = assert_envelope(fast, 400, "slow_down")
    assert "10 seconds" in body["detail"]
    assert_envelope(later, 400, "authorization_pending")


async def test_approved_poll_issues_device_key(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, "ada@example.com")
    pair = await sign_in(client, "ada@example.com", account.password)
    code = await start(client)

    approved = await client.post(
        "/v1/auth/device/approve",
        json={"user_code": code["user_code"].lower().replace("-", "")},
        headers=bearer(pair["access_token"]),
    )
    token = await poll(client, code["device_code"])
    await forget_last_poll(app)
    again = await poll(client, code["device_code"])

    assert approved.status_code == 204
    assert token.status_code == 200
    body = token.json()
    assert body["api_key"].startswith("trw_dk_")
    assert body["user_email"] == "ada@example.com"
    assert body["org_name"] == account.organization.name
    assert body["organization_id"] == account.organization.id
    stats = await client.get("/v1/telemetry/stats", headers=bearer(body["api_key"]))
    assert stats.status_code == 200
    assert_envelope(again, 400, "invalid_grant")
    keys = await fetch_all(app, select(ApiKey))
    assert keys[0].name.startswith("trw-cli 20")
    actions = [e.action for e in await fetch_all(app, select(AuditEvent))]
    assert "device.approved" in actions
    assert "api_key.created" in actions


async def test_approve_with_api_key(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org_with_key(db)
    code = await start(client)

    approved = await client.post(
        "/v1/auth/device/approve",
        json={"user_code": code["user_code"]},
        headers=org.headers,
    )
    token = await poll(client, code["device_code"])

    assert approved.status_code == 204
    assert token.json()["organization_id"] == org.organization.id
    assert token.json()["user_email"] is None


async def test_approve_with_narrow_key_forbidden(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org_with_key(db, scopes=["telemetry:write"])
    code = await start(client)

    response = await client.post(
        "/v1/auth/device/approve",
        json={"user_code": code["user_code"]},
        headers=org.headers,
    )

    assert_envelope(response, 403, "insufficient_scope")


async def test_approve_other_org_not_found(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, "ada@example.com")
    stranger = await make_user(db, "eve@example.com")
    pair = await sign_in(client, "ada@example.com", account.password)
    code = await start(client)

    response = await client.post(
        "/v1/auth/device/approve",
        json={
            "user_code": code["user_code"],
            "organization_id": stranger.organization.id,
        },
        headers=bearer(pair["access_token"]),
    )

    assert_envelope(response, 404, "not_found")


async def test_approve_needs_credential_and_known_code(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org_with_key(db)

    anonymous = await client.post(
        "/v1/auth/device/approve", json={"user_code": "BCDF-GHJK"}
    )
    unknown = await client.post(
        "/v1/auth/device/approve", json={"user_code": "BCDF-GHJK"}, headers=org.headers
    )
    bad_key = await client.post(
        "/v1/auth/device/approve",
        json={"user_code": "BCDF-GHJK"},
        headers=bearer("trw_live_nope"),
    )

    assert_envelope(anonymous, 401, "unauthorized")
    assert_envelope(unknown, 404, "user_code_not_found")
    assert_envelope(bad_key, 401, "unauthorized")


async def test_denied_poll_answers_access_denied(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org_with_key(db)
    code = await start(client)

    denied = await client.post(
        "/v1/auth/device/deny",
        json={"user_code": code["user_code"]},
        headers=org.headers,
    )
    token = await poll(client, code["device_code"])
    twice = await client.post(
        "/v1/auth/device/approve",
        json={"user_code": code["user_code"]},
        headers=org.headers,
    )

    assert denied.status_code == 204
    assert_envelope(token, 400, "access_denied")
    assert_envelope(twice, 409, "device_already_decided")
    assert (
        await fetch_all(app, select(ApiKey).where(ApiKey.name.like("trw-cli%"))) == []
    )


async def test_expired_code_answers_expired_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    code = await start(client)
    async with app.state.sessionmaker() as session:
        await session.execute(update(DeviceAuthorization).values(expires_at=utc_now()))
        await session.commit()

    response = await poll(client, code["device_code"])

    assert_envelope(response, 400, "expired_token")


async def test_poll_rejects_bad_requests(client: httpx.AsyncClient) -> None:
    code = await start(client)

    unknown = await poll(client, "unknown-device-code")
    other_client = await poll(client, code["device_code"], client_id="someone-else")
    grant = await poll(client, code["device_code"], grant_type="password")
    missing = await client.post("/v1/auth/device/token", json={"client_id": "trw-cli"})
    not_json = await client.post(
        "/v1/auth/device/token",
        content=b"{",
        headers={"content-type": "application/json"},
    )

    assert_envelope(unknown, 400, "invalid_grant")
    assert_envelope(other_client, 400, "invalid_grant")
    assert_envelope(grant, 400, "unsupported_grant_type")
    assert_envelope(missing, 400, "invalid_request")
    assert_envelope(not_json, 400, "invalid_json")


async def test_poll_accepts_form_encoding(client: httpx.AsyncClient) -> None:
    code = await start(client)

    response = await client.post(
        "/v1/auth/device/token",
        data={
            "client_id": "trw-cli",
            "device_code": code["device_code"],
            "grant_type": GRANT,
        },
    )

    assert_envelope(response, 400, "authorization_pending")


async def test_device_code_rate_limited(client: httpx.AsyncClient) -> None:
    statuses = [
        (await client.post("/v1/auth/device/code", json={"client_id": "x"})).status_code
        for _ in range(11)
    ]

    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429


async def invoke(*args: str):
    """Run the CLI in a thread: it starts its own event loop."""
    runner = CliRunner()
    return await anyio.to_thread.run_sync(lambda: runner.invoke(cli_app, list(args)))


@pytest.fixture
def cli_env(database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRW_SERVER_DATABASE_URL", database_url)
    monkeypatch.setenv("TRW_SERVER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TRW_SERVER_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_cli_lists_and_approves(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, cli_env: None
) -> None:
    account = await make_user(db, "ada@example.com")
    code = await start(client)

    listed = await invoke("devices", "list")
    approved = await invoke(
        *[
            "devices",
            "approve",
            code["user_code"],
            "--user",
            "ada@example.com",
            "--org",
            account.organization.slug,
        ],
    )
    token = await poll(client, code["device_code"])

    assert listed.exit_code == 0
    assert code["user_code"] in listed.output
    assert approved.exit_code == 0, approved.output
    assert token.json()["user_email"] == "ada@example.com"


async def test_cli_denies_and_reports_errors(
    client: httpx.AsyncClient, db: AsyncSession, cli_env: None
) -> None:
    stranger = await make_user(db, "eve@example.com")
    await make_user(db, "ada@example.com")
    code = await start(client)

    not_member = await invoke(
        *[
            "devices",
            "approve",
            code["user_code"],
            "--user",
            "ada@example.com",
            "--org",
            stranger.organization.id,
        ],
    )
    denied = await invoke("devices", "deny", code["user_code"])
    unknown = await invoke("devices", "deny", "BCDF-GHJK")
    token = await poll(client, code["device_code"])

    assert not_member.exit_code == 1
    assert "not found" in not_member.output
    assert denied.exit_code == 0
    assert unknown.exit_code == 1
    assert_envelope(token, 400, "access_denied")
