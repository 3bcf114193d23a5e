"""First start of ``trw-platform serve`` on an empty data folder."""

import json

import httpx
import pytest

from tests.e2e.live import RunningServer

pytestmark = pytest.mark.e2e


def test_first_start_prints_client_settings(running_server: RunningServer) -> None:
    printed = running_server.output.read_text()

    assert f"export TRW_PLATFORM_URL={running_server.url}" in printed
    assert f"export TRW_PLATFORM_API_KEY={running_server.first_key}" in printed
    assert "TRW_PLATFORM_TRUSTED_HOSTS" not in printed


def test_first_key_never_logged(running_server: RunningServer) -> None:
    log_lines = [
        line
        for line in running_server.output.read_text().splitlines()
        if line.startswith("{")
    ]

    assert any(json.loads(line)["event"] == "request" for line in log_lines)
    assert all(running_server.first_key not in line for line in log_lines)


def test_first_key_works(running_server: RunningServer) -> None:
    headers = {"Authorization": f"Bearer {running_server.first_key}"}

    response = httpx.get(f"{running_server.url}/v1/telemetry/stats", headers=headers)

    assert response.status_code == 200
    assert response.json()["total"] >= 0
