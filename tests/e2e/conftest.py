"""A live trw-platform server on a free loopback port, for the real clients.

The server runs as ``trw-platform serve`` in a subprocess on SQLite in a
temporary data folder, exactly as a user starts it. Each test gets a fresh
organization and key, made with the ``trw-platform`` command.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.live import RunningServer, create_org_key, serve


@dataclass
class LiveServer:
    url: str
    api_key: str
    http: httpx.Client


@pytest.fixture(scope="session")
def running_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with serve(tmp_path_factory.mktemp("live-server"), HOST="127.0.0.1") as server:
        yield server


@pytest.fixture
def live_server(
    running_server: RunningServer, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    name = (
        re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-") or "e2e"
    )
    api_key = create_org_key(running_server, name)
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=running_server.url, headers=headers, timeout=30) as http:
        yield LiveServer(running_server.url, api_key, http)
