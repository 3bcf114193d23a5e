"""The harness itself: egress guard, proxy routing in a session, daemon cleanup.

None of these tests needs the live server, and none sends a request beyond
127.0.0.1: routing is read from the transports httpx and urllib would pick.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from .clients import (
    TRW_MCP_NEW,
    ClientEnv,
    ClientSession,
    EgressGuard,
    daemon_record_paths,
    ensure_client_env,
    parse_result_line,
    write_project_config,
)

pytestmark = pytest.mark.e2e

DEFAULT_PLATFORM_URL = "https://api.trwframework.com"
#: Nothing listens here; the tests below never connect to it.
UNUSED_LOOPBACK_URL = "http://127.0.0.1:9"


@pytest.fixture(scope="session")
def mcp_new_env() -> ClientEnv:
    return ensure_client_env(TRW_MCP_NEW)


def test_egress_guard_rejects_and_records() -> None:
    guard = EgressGuard()
    try:
        host, port = guard.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            connection.sendall(
                b"CONNECT api.trwframework.com:443 HTTP/1.1\r\n"
                b"Host: api.trwframework.com\r\n\r\n"
            )
            reply = connection.recv(1024)
    finally:
        guard.close()
    assert reply.startswith(b"HTTP/1.1 403")
    assert guard.snapshot() == ["CONNECT api.trwframework.com:443 HTTP/1.1"]


def test_session_routes_only_loopback_directly(
    mcp_new_env: ClientEnv, tmp_path: Path
) -> None:
    with ClientSession(
        mcp_new_env,
        root=tmp_path,
        platform_url=UNUSED_LOOPBACK_URL,
        api_key="trw_live_unused",
    ) as session:
        run = session.run_driver(
            "proxy_routes.py", DEFAULT_PLATFORM_URL, UNUSED_LOOPBACK_URL
        )
        guard_url = session.env["HTTPS_PROXY"]
    routes = run.require_success()["routes"]
    assert routes[DEFAULT_PLATFORM_URL] == {"httpx": guard_url, "urllib": guard_url}  # type: ignore[index]
    assert routes[UNUSED_LOOPBACK_URL] == {"httpx": None, "urllib": None}  # type: ignore[index]
    assert run.result is not None
    assert run.result["requests"] == []


def test_session_stops_memory_daemon(mcp_new_env: ClientEnv, tmp_path: Path) -> None:
    # Without consent `local learn` stays local, but 9.5.1 still starts the daemon.
    with ClientSession(
        mcp_new_env,
        root=tmp_path,
        platform_url=UNUSED_LOOPBACK_URL,
        api_key="trw_live_unused",
        project_config={},
        init_project=True,
    ) as session:
        learned = session.run_cli(
            "local",
            "learn",
            "--summary",
            "Harness check",
            "--detail",
            "Starts the daemon",
        )
        assert learned.returncode == 0, learned.describe()
        records = [
            path for path in daemon_record_paths(session.home_dir) if path.exists()
        ]
        assert records, "trw-mcp 9.5.1 wrote no daemon.json"
        pid = int(json.loads(records[0].read_text(encoding="utf-8"))["pid"])
        assert Path(f"/proc/{pid}").exists()
    assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return (
            Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
        )
    except OSError:
        return True


def test_write_project_config_replaces_keys(tmp_path: Path) -> None:
    config = tmp_path / ".trw" / "config.yaml"
    config.parent.mkdir()
    config.write_text(
        "# comment\n"
        "platform_telemetry_enabled: false\n"
        "nested:\n"
        "  installation_id: keep\n"
    )
    write_project_config(
        tmp_path, {"platform_telemetry_enabled": True, "installation_id": "e2e-1"}
    )
    assert config.read_text().splitlines() == [
        "# comment",
        "nested:",
        "  installation_id: keep",
        "platform_telemetry_enabled: true",
        'installation_id: "e2e-1"',
    ]


def test_parse_result_line_takes_last_driver_line() -> None:
    stdout = (
        "log line\n"
        '{"driver": "a", "n": 1}\n'
        '{"not": "a result"}\n'
        '{"driver": "b", "n": 2}\n'
        "Learning recorded\n"
    )
    assert parse_result_line(stdout) == {"driver": "b", "n": 2}
    assert parse_result_line("no json here\n") is None
