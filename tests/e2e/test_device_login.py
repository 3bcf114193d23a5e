"""``trw-mcp auth login`` (9.5.1) against a live server: the RFC 8628 device flow.

The CLI posts ``/v1/auth/device/code``, prints the complete verification URL,
runs ``$BROWSER`` (``true`` in the harness) and polls ``/v1/auth/device/token``
until the code is approved, then saves the issued key to the project's
``.trw/credentials.yaml`` with mode 0600.
"""

from __future__ import annotations

import queue
import re
import stat
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .clients import TRW_MCP_NEW, ClientEnv, ClientSession, ensure_client_env
from .server_api import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.accounts]

CLI_CLIENT_ID = "trw-cli"
DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
URL_PATTERN = re.compile(r"https?://\S+")
KEY_LINE_PATTERN = re.compile(
    r'^platform_api_key:\s*"?(?P<key>trw_dk_[A-Za-z0-9_-]+)"?\s*$', re.MULTILINE
)
LOGIN_TIMEOUT_S = 60.0


class OutputReader:
    """Drains a process's stdout in a thread, so a spinner cannot fill the pipe."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self._stream = process.stdout
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        for line in self._stream:
            self._lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            self.seen.append(line)
            if match := pattern.search(line):
                return match
        raise AssertionError(
            f"no output matched {pattern.pattern!r} within {timeout} s;"
            f" output: {''.join(self.seen)!r}"
        )

    def rest(self) -> str:
        self._thread.join(timeout=5)
        while not self._lines.empty():
            self.seen.append(self._lines.get())
        return "".join(self.seen)


def user_code_from(verification_url: str) -> str:
    """Read the user code from the query string of the complete verification URL."""
    query = parse_qs(urlsplit(verification_url).query)
    for name in ("user_code", "code"):
        if query.get(name):
            return query[name][0]
    raise AssertionError(f"verification URL carries no user_code: {verification_url}")


def approve_device_code(live_server: LiveServer, user_code: str) -> None:
    """Approve a pending device code for the organization of ``live_server.api_key``.

    NOTE: this replaces the browser approval page. It assumes that
    ``POST /v1/auth/device/approve`` with ``{"user_code": ...}`` accepts the
    organization's API key. Change it here if the server approves otherwise.
    """
    response = live_server.http.post(
        "/v1/auth/device/approve", json={"user_code": user_code}
    )
    assert response.status_code in (200, 204), (
        f"approval returned {response.status_code}: {response.text}"
    )


@pytest.fixture(scope="session")
def mcp_new_env() -> ClientEnv:
    return ensure_client_env(TRW_MCP_NEW)


def test_auth_login_saves_issued_key(
    mcp_new_env: ClientEnv, live_server: LiveServer, tmp_path: Path
) -> None:
    with ClientSession(
        mcp_new_env,
        root=tmp_path,
        platform_url=live_server.url,
        api_key=live_server.api_key,
        project_config={},
    ) as session:
        # No key in the environment, so the CLI cannot report one it did not receive.
        session.env.pop("TRW_PLATFORM_API_KEY")
        process = session.start_cli(
            "auth", "login", "--api-url", live_server.url, "--no-machine"
        )
        output = OutputReader(process)
        verification_url = output.wait_for(URL_PATTERN, timeout=30).group(0)
        assert verification_url.startswith(live_server.url), verification_url

        approve_device_code(live_server, user_code_from(verification_url))
        returncode = process.wait(timeout=LOGIN_TIMEOUT_S)
        printed = output.rest()
        credentials = session.project_dir / ".trw" / "credentials.yaml"
        blocked = session.blocked_egress

    assert returncode == 0, printed
    assert "API key saved to" in printed
    assert blocked == []
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    match = KEY_LINE_PATTERN.search(credentials.read_text(encoding="utf-8"))
    assert match is not None, "credentials.yaml contains no trw_dk_ key"

    headers = {"Authorization": f"Bearer {match.group('key')}"}
    response = httpx.get(
        f"{live_server.url}/v1/telemetry/stats", headers=headers, timeout=30
    )
    assert response.status_code == 200


def test_device_code_response_has_client_fields(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as anonymous:
        response = anonymous.post(
            "/v1/auth/device/code", json={"client_id": CLI_CLIENT_ID}
        )
    assert 200 <= response.status_code < 300, response.text
    body = response.json()
    for field in (
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
    ):
        assert isinstance(body.get(field), str), f"{field} missing or not a string"
        assert body[field], f"{field} is empty"
    assert isinstance(body.get("interval"), int)
    assert isinstance(body.get("expires_in"), int)
    assert user_code_from(body["verification_uri_complete"]) == body["user_code"]


def test_token_poll_before_approval_is_pending(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as anonymous:
        code = anonymous.post(
            "/v1/auth/device/code", json={"client_id": CLI_CLIENT_ID}
        ).json()
        response = anonymous.post(
            "/v1/auth/device/token",
            json={
                "client_id": CLI_CLIENT_ID,
                "device_code": code["device_code"],
                "grant_type": DEVICE_GRANT_TYPE,
            },
        )
    assert 400 <= response.status_code < 500
    assert response.json()["error"] == "authorization_pending"


def test_token_poll_with_unknown_code_stops_client(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as anonymous:
        response = anonymous.post(
            "/v1/auth/device/token",
            json={
                "client_id": CLI_CLIENT_ID,
                "device_code": "unknown-device-code",
                "grant_type": DEVICE_GRANT_TYPE,
            },
        )
    assert 400 <= response.status_code < 500
    # Any code but these two makes the CLI stop polling.
    assert response.json()["error"] not in ("authorization_pending", "slow_down")
