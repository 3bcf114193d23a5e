"""Start ``trw-platform serve`` in a subprocess, as a user does, for tests."""

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

KEY_PATTERN = re.compile(r"trw_live_[0-9A-Za-z]{38}")
START_TIMEOUT_S = 60.0
CLI = [sys.executable, "-m", "trw_platform"]


@dataclass
class RunningServer:
    url: str
    env: dict[str, str]
    first_key: str
    output: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(
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


@contextmanager
def serve(data_dir: Path, *args: str, **settings: str) -> Iterator[RunningServer]:
    """Run the server on a free port with ``TRW_SERVER_<NAME>`` settings given.

    The data folder must be empty, so the first start prints a key.
    """
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TRW_SERVER_")
    }
    env.update({f"TRW_SERVER_{name}": value for name, value in settings.items()})
    env.update({"TRW_SERVER_DATA_DIR": str(data_dir), "TRW_SERVER_PORT": str(port)})
    env.setdefault("TRW_SERVER_LOG_FORMAT", "json")

    output = data_dir / "server.log"
    with output.open("wb") as log_file:
        process = subprocess.Popen(
            [*CLI, "serve", *args], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, output)
        match = KEY_PATTERN.search(output.read_text())
        assert match is not None, "first start printed no API key"
        yield RunningServer(url, env, match.group(0), output)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def create_org_key(server: RunningServer, name: str) -> str:
    """Create an organization and a key with every scope through the CLI."""
    slug = f"{name}-{os.urandom(4).hex()}"
    run = {"env": server.env, "capture_output": True, "text": True, "check": True}
    subprocess.run([*CLI, "orgs", "create", name, "--slug", slug], **run)  # type: ignore[call-overload]
    created = subprocess.run([*CLI, "keys", "create", "--org", slug], **run)  # type: ignore[call-overload]
    match = KEY_PATTERN.search(created.stdout)
    assert match is not None, created.stdout
    return match.group(0)
