"""Cross-cutting behaviour: health, envelope, request ids, slashes, body caps."""

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import close_app, make_settings
from tests.factories import make_org_with_key
from trw_platform.app import create_app

pytestmark = pytest.mark.anyio


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "detail", "request_id"}
    assert body["error"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_health_reports_database_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["version"]


async def test_health_reports_unreachable_database(tmp_path: Path) -> None:
    settings = make_settings("postgresql+asyncpg://postgres@127.0.0.1:1/none", tmp_path)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/v1/health")

    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"


async def test_root_answers_without_auth(client: httpx.AsyncClient) -> None:
    response = await client.get("/")

    assert response.status_code == 200
    assert response.json()["service"] == "trw-platform"


async def test_unknown_route_uses_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/no-such-route")

    body = assert_envelope(response, 404, "not_found")
    assert "/v1/no-such-route" in body["detail"]


async def test_wrong_method_uses_envelope(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/health")

    assert_envelope(response, 405, "method_not_allowed")


async def test_trailing_slash_served_not_redirected(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/health/")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_request_id_generated_and_echoed(client: httpx.AsyncClient) -> None:
    generated = await client.get("/v1/health")
    echoed = await client.get("/v1/health", headers={"X-Request-ID": "req-12345678"})
    unsafe = await client.get(
        "/v1/health", headers={"X-Request-ID": "bad id\twith tab"}
    )

    assert len(generated.headers["x-request-id"]) == 36
    assert echoed.headers["x-request-id"] == "req-12345678"
    assert unsafe.headers["x-request-id"] != "bad id\twith tab"


async def test_unexpected_error_hides_internals(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/v1/explode", explode)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/v1/explode")

    body = assert_envelope(response, 500, "internal_server_error")
    assert body["detail"] == "An unexpected error occurred."
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    failures = [r for r in caplog.records if r.exc_info and r.exc_info[1]]
    assert any("secret internal detail" in str(r.exc_info[1]) for r in failures)


async def test_validation_error_lists_locations(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/token", json={"api_key": 42})

    body = assert_envelope(response, 422, "validation_error")
    assert body["detail"][0]["loc"] == ["body", "api_key"]
    assert {"loc", "msg", "type"} <= set(body["detail"][0])


async def test_oversized_body_rejected_by_length(
    tmp_path: Path, database_url: str
) -> None:
    app = create_app(make_settings(database_url, tmp_path, MAX_BODY_BYTES=2048))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post(
            "/v1/auth/token",
            content=b"x" * 4096,
            headers={"content-type": "application/json"},
        )
    await close_app(app)

    body = assert_envelope(response, 413, "payload_too_large")
    assert "2048" in body["detail"]


async def test_openapi_docs_served(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    schema = await client.get("/openapi.json")

    assert docs.status_code == 200
    assert "cdn." not in docs.text
    assert "/v1/telemetry" in schema.json()["paths"]
    assert "HTTPBearer" in schema.json()["components"]["securitySchemes"]
    bundle = await client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200


async def test_access_log_has_no_key(
    client: httpx.AsyncClient, db, caplog: pytest.LogCaptureFixture
) -> None:
    org = await make_org_with_key(db)
    with caplog.at_level(logging.INFO):
        response = await client.get("/v1/telemetry/stats", headers=org.headers)

    assert response.status_code == 200
    request_lines = [r for r in caplog.records if "request" in str(r.msg)]
    assert request_lines
    assert all(org.raw_key not in r.getMessage() for r in caplog.records)


async def test_oversized_chunked_body_rejected(
    tmp_path: Path, database_url: str
) -> None:
    app = create_app(make_settings(database_url, tmp_path, MAX_BODY_BYTES=2048))

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(4):
            yield b"x" * 1024

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post(
            "/v1/auth/token",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
    await close_app(app)

    assert_envelope(response, 413, "payload_too_large")


async def test_head_answers_health_and_root(client: httpx.AsyncClient) -> None:
    health = await client.head("/v1/health")
    root = await client.head("/")

    assert health.status_code == 200
    assert root.status_code == 200


async def test_stalled_body_times_out(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("trw_platform.core.requests.BODY_IDLE_TIMEOUT_S", 0.2)
    app = create_app(make_settings(database_url, tmp_path))

    async def stalled():  # type: ignore[no-untyped-def]
        yield b'{"api_key": '
        await asyncio.sleep(5)
        yield b'"x"}'

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post(
            "/v1/auth/token",
            content=stalled(),
            headers={"content-type": "application/json"},
        )
    await close_app(app)

    assert_envelope(response, 408, "request_timeout")
