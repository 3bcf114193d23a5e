"""Shared helpers for the driver scripts, which run inside a client environment.

Only the standard library and httpx (a dependency of every TRW client) are used,
so this module imports in any client environment.

``HttpRecorder`` wraps ``httpx.Client.send`` and ``httpx.AsyncClient.send`` to
record each request a client makes and the response it got, without changing
either. Drivers print the record with their result so a test can compare what
the client sent with what the server stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

#: Environment variables whose value is the platform key the harness configured.
_KEY_VARIABLES = ("TRW_PLATFORM_API_KEY", "MEMORY_PLATFORM_API_KEY")


def describe_authorization(value: str | None) -> str | None:
    """Describe an Authorization header without printing a key.

    Returns ``"Bearer <configured key>"`` when the header carries the key from
    the environment, ``"Bearer <other key>"`` for any other bearer, the scheme
    alone for other schemes, and None when the header is absent.
    """
    if value is None:
        return None
    configured = {os.environ.get(name, "") for name in _KEY_VARIABLES} - {""}
    scheme, _, credential = value.partition(" ")
    if scheme.lower() == "bearer":
        return (
            "Bearer <configured key>"
            if credential in configured
            else "Bearer <other key>"
        )
    return f"{scheme} <credential>"


def _json_or_text(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw[:2000].decode("utf-8", errors="replace")


class HttpRecorder:
    """Records every httpx request of this process and its response status and body."""

    def __init__(self) -> None:
        self.exchanges: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def install(self) -> HttpRecorder:
        recorder = self
        original_send = httpx.Client.send
        original_async_send = httpx.AsyncClient.send

        def send(
            client: httpx.Client, request: httpx.Request, *args: Any, **kwargs: Any
        ) -> httpx.Response:
            entry = recorder._start(request)
            try:
                response = original_send(client, request, *args, **kwargs)
            except Exception as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
                raise
            recorder._finish(entry, response, streamed=bool(kwargs.get("stream")))
            return response

        async def async_send(
            client: httpx.AsyncClient, request: httpx.Request, *args: Any, **kwargs: Any
        ) -> httpx.Response:
            entry = recorder._start(request)
            try:
                response = await original_async_send(client, request, *args, **kwargs)
            except Exception as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
                raise
            recorder._finish(entry, response, streamed=bool(kwargs.get("stream")))
            return response

        httpx.Client.send = send  # type: ignore[method-assign,assignment]
        httpx.AsyncClient.send = async_send  # type: ignore[method-assign,assignment]
        return self

    def _start(self, request: httpx.Request) -> dict[str, Any]:
        url = str(request.url)
        parts = urlsplit(url)
        try:
            body = _json_or_text(request.content)
        except httpx.RequestNotRead:
            body = "<streamed request body>"
        entry: dict[str, Any] = {
            "method": request.method,
            "url": url,
            "path": parts.path,
            "query": parts.query,
            "header_names": sorted(name.lower() for name in request.headers),
            "content_type": request.headers.get("content-type"),
            "authorization": describe_authorization(
                request.headers.get("authorization")
            ),
            "json": body,
            "status": None,
            "response_json": None,
            "error": None,
        }
        with self._lock:
            self.exchanges.append(entry)
        return entry

    @staticmethod
    def _finish(
        entry: dict[str, Any], response: httpx.Response, *, streamed: bool
    ) -> None:
        entry["status"] = response.status_code
        if not streamed:
            entry["response_json"] = _json_or_text(response.content)

    def matching(self, method: str, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                e for e in self.exchanges if e["method"] == method and e["path"] == path
            ]


def package_versions(*names: str) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file, skipping blank lines; a missing file reads as empty."""
    if not path.exists():
        return []
    return [
        json.loads(line)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def run_console_script(name: str, *args: str) -> dict[str, Any]:
    """Run a console script of this environment, such as ``trw-mcp``.

    Returns its argv, exit code, stdout and the tail of stderr.
    """
    script = Path(sys.executable).parent / name
    completed = subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return {
        "argv": [name, *args],
        "returncode": completed.returncode,
        "stdout": completed.stdout[-2000:],
        "stderr_tail": completed.stderr[-2000:],
    }


def emit_result(driver: str, recorder: HttpRecorder, **fields: Any) -> None:
    """Print the driver's result as one JSON line on stdout, last."""
    result = {
        "driver": driver,
        "packages": package_versions("trw-mcp", "trw-memory", "httpx"),
        **fields,
        "requests": recorder.exchanges,
    }
    sys.stdout.flush()
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
