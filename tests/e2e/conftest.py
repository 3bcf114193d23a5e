"""A live trw-platform server on a free loopback port, for the real clients.

The server runs as ``trw-platform serve`` in a subprocess on SQLite in a
temporary data folder, exactly as a user starts it. Each test gets a fresh
organization and key, made with the ``trw-platform`` command.
"""

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

KEY_PATTERN = re.compile(r"trw_live_[0-9A-Za-z]{38}")
START_TIMEOUT_S = 60.0
CLI = [sys.executable, "-m", "trw_platform"]


@dataclass
class LiveServer:
    url: str
    api_key: str
    http: httpx.Client


@dataclass
class RunningServer:
    url: str
    env: dict[str, str]
    first_key: str
    output: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], output: Path
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{output.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server did not become healthy:\n{output.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def running_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("live-server")
    port = _free_port()
    env = {
        **os.environ,
        "TRW_SERVER_DATA_DIR": str(data_dir),
        "TRW_SERVER_PORT": str(port),
        "TRW_SERVER_HOST": "127.0.0.1",
        "TRW_SERVER_LOG_FORMAT": "json",
    }
    env.pop("TRW_SERVER_DATABASE_URL", None)
    env.pop("TRW_SERVER_REDIS_URL", None)
    output = data_dir / "server.log"
    with output.open("wb") as log_file:
        process = subprocess.Popen(
            [*CLI, "serve"], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process, output)
        match = KEY_PATTERN.search(output.read_text())
        assert match is not None, "first start printed no API key"
        yield RunningServer(url, env, match.group(0), output)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _new_org_key(server: RunningServer, name: str) -> str:
    slug = f"{name}-{os.urandom(4).hex()}"
    run = {"env": server.env, "capture_output": True, "text": True, "check": True}
    subprocess.run([*CLI, "orgs", "create", name, "--slug", slug], **run)  # type: ignore[call-overload]
    created = subprocess.run([*CLI, "keys", "create", "--org", slug], **run)  # type: ignore[call-overload]
    match = KEY_PATTERN.search(created.stdout)
    assert match is not None, created.stdout
    return match.group(0)


@pytest.fixture
def live_server(
    running_server: RunningServer, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    name = (
        re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-") or "e2e"
    )
    api_key = _new_org_key(running_server, name)
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=running_server.url, headers=headers, timeout=30) as http:
        yield LiveServer(running_server.url, api_key, http)
