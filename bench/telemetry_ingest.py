"""Measure telemetry ingest: events per second in batches of 100, three ways.

1. ``server``: POST /v1/telemetry on a running ``trw-platform serve`` (one
   worker, SQLite), with auth, per-event checks, dedup, rollups and commit.
2. ``straight insert``: the same rows, already normalized, inserted into a
   fresh migrated SQLite database with SQLAlchemy Core, one commit per batch.
   ``raw driver`` does the same with the standard library's sqlite3
   ``executemany``, the floor for any Python code.
3. ``bare endpoint``: a uvicorn app whose only route reads and parses the
   JSON body, driven by the same load generator.

All three run in one invocation on the same machine, and the script prints
the ratios of the server to the two baselines.

    .venv/bin/python bench/telemetry_ingest.py [--batches 400] [--concurrency 8]
"""

import argparse
import asyncio
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from trw_platform.core import migrate
from trw_platform.core.db import create_engine
from trw_platform.telemetry.models import TelemetryEvent
from trw_platform.telemetry.normalize import Limits, normalize_event

BATCH_SIZE = 100
WARM_UP_BATCHES = 20
KEY_PATTERN = re.compile(r"trw_live_[0-9A-Za-z]{38}")
TOOLS = ["trw_learn", "trw_recall", "trw_checkpoint", "trw_deliver", "trw_status"]
BARE_APP = """
import orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def ingest(request):
    body = orjson.loads(await request.body())
    return Response(orjson.dumps({"accepted": len(body["events"])}),
                    media_type="application/json")

app = Starlette(routes=[Route("/v1/telemetry", ingest, methods=["POST"])])
"""


def make_event(index: int, installation: int, base: datetime) -> dict[str, Any]:
    """Build one event in the shape of a trw-mcp 9.5.1 pipeline tool call."""
    return {
        "event_id": f"evt_{uuid.uuid4().hex}",
        "installation_id": f"{installation:016x}",
        "framework_version": "9.5.1",
        "event_type": "tool_invocation",
        "phase": "implement",
        "ts": (base + timedelta(seconds=index)).isoformat(),
        "tool_name": TOOLS[index % len(TOOLS)],
        "duration_ms": float(index % 900),
        "outcome": "success",
        "status": "success" if index % 10 else "error",
        "success": bool(index % 10),
        "session_id": f"sess-{index // 500}",
        "run_id": None,
    }


def make_batches(count: int) -> list[bytes]:
    base = datetime.now(UTC) - timedelta(days=1)
    batches = []
    for batch in range(count):
        # A client sends the events of one installation per batch; 50 of
        # them take turns here.
        events = [
            make_event(batch * BATCH_SIZE + i, batch % 50, base)
            for i in range(BATCH_SIZE)
        ]
        batches.append(orjson.dumps({"events": events}))
    return batches


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not respond within 60 s")


async def drive(
    url: str, headers: dict[str, str], batches: list[bytes], concurrency: int
) -> float:
    """POST every batch with ``concurrency`` requests in flight; return events/s.

    Warm-up batches of their own open the connections first, so every timed
    batch carries new events, and each must come back with all of them
    accepted.
    """
    queue: list[bytes] = []
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as http:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                response = await http.post("/v1/telemetry", content=body, timeout=60)
                response.raise_for_status()
                accepted = response.json()["accepted"]
                if accepted != BATCH_SIZE:
                    raise RuntimeError(f"{accepted} of {BATCH_SIZE} events accepted")

        queue.extend(make_batches(WARM_UP_BATCHES))
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        queue.extend(reversed(batches))
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(batches) * BATCH_SIZE / elapsed


def run_server(data_dir: Path, batches: list[bytes], concurrency: int) -> float:
    port = free_port()
    env = {
        **os.environ,
        "TRW_SERVER_DATA_DIR": str(data_dir),
        "TRW_SERVER_PORT": str(port),
        "TRW_SERVER_WORKERS": "1",
        "TRW_SERVER_LOG_LEVEL": "warning",
        # The load comes from one IP and one key, far above the defaults.
        "TRW_SERVER_RATE_LIMIT_TELEMETRY": "10000000/minute",
        "TRW_SERVER_RATE_LIMIT_IP": "10000000/minute",
    }
    for name in ("TRW_SERVER_DATABASE_URL", "TRW_SERVER_REDIS_URL"):
        env.pop(name, None)
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "trw_platform", "serve"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/v1/health", process)
        key = KEY_PATTERN.search(log_path.read_text())
        if key is None:
            raise RuntimeError("the server printed no API key on first start")
        headers = {
            "Authorization": f"Bearer {key.group(0)}",
            "Content-Type": "application/json",
        }
        return asyncio.run(drive(url, headers, batches, concurrency))
    finally:
        process.terminate()
        process.wait(timeout=15)


def run_bare(folder: Path, batches: list[bytes], concurrency: int) -> float:
    (folder / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port),
         "--log-level", "warning"],
        cwd=folder,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/", process)
        headers = {"Content-Type": "application/json"}
        return asyncio.run(drive(url, headers, batches, concurrency))
    finally:
        process.terminate()
        process.wait(timeout=15)


async def straight_insert(url: str, batches: list[bytes]) -> float:
    limits = Limits(max_event_bytes=65536, max_clock_skew=timedelta(minutes=10))
    received_at = datetime.now(UTC)
    organization_id = uuid.uuid4().hex
    prepared = []
    for body in batches:
        rows = []
        for raw in orjson.loads(body)["events"]:
            row = normalize_event(raw, received_at=received_at, limits=limits)
            row["organization_id"] = organization_id
            rows.append(row)
        prepared.append(rows)

    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.exec_driver_sql(
            "INSERT INTO organizations (id, name, slug, created_at)"
            " VALUES (?, 'b', 'b', ?)",
            (organization_id, received_at.replace(tzinfo=None).isoformat(" ")),
        )
    table = TelemetryEvent.__table__
    started = time.perf_counter()
    for rows in prepared:
        async with engine.begin() as connection:
            await connection.execute(table.insert(), rows)
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return len(batches) * BATCH_SIZE / elapsed


def raw_driver_insert(path: Path, batches: list[bytes]) -> float:
    limits = Limits(max_event_bytes=65536, max_clock_skew=timedelta(minutes=10))
    received_at = datetime.now(UTC)
    organization_id = uuid.uuid4().hex
    prepared = []
    for body in batches:
        rows = []
        for raw in orjson.loads(body)["events"]:
            row = normalize_event(raw, received_at=received_at, limits=limits)
            row["organization_id"] = organization_id
            rows.append(row)
        prepared.append(rows)
    columns = list(prepared[0][0])

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        "INSERT INTO organizations (id, name, slug, created_at)"
        " VALUES (?, 'r', 'r', ?)",
        (organization_id, received_at.replace(tzinfo=None).isoformat(" ")),
    )
    statement = (
        f"INSERT INTO telemetry_events ({', '.join(columns)})"
        f" VALUES ({', '.join('?' * len(columns))})"
    )
    started = time.perf_counter()
    for rows in prepared:
        connection.execute("BEGIN")
        connection.executemany(
            statement, [_driver_values(row, columns) for row in rows]
        )
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return len(batches) * BATCH_SIZE / elapsed


def _driver_values(row: dict[str, Any], columns: list[str]) -> tuple[Any, ...]:
    values = []
    for name in columns:
        value = row[name]
        if isinstance(value, datetime):
            value = value.replace(tzinfo=None).isoformat(" ")
        elif isinstance(value, dict):
            value = orjson.dumps(value).decode()
        values.append(value)
    return tuple(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batches", type=int, default=400, help="batches of 100 events per run"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    args = parser.parse_args()

    batches = make_batches(args.batches)
    with tempfile.TemporaryDirectory(prefix="trw-bench-") as folder:
        root = Path(folder)
        (root / "server").mkdir()
        server_rate = run_server(root / "server", batches, args.concurrency)
        bare_rate = run_bare(root, batches, args.concurrency)
        database = f"sqlite+aiosqlite:///{root / 'straight.db'}"
        migrate.upgrade(database)
        insert_rate = asyncio.run(straight_insert(database, batches))
        migrate.upgrade(f"sqlite+aiosqlite:///{root / 'raw.db'}")
        raw_rate = raw_driver_insert(root / "raw.db", batches)

    print(f"events: {args.batches * BATCH_SIZE} in batches of {BATCH_SIZE}, "
          f"concurrency {args.concurrency}, one worker, SQLite")  # fmt: skip
    print(f"{'run':<18}{'events/s':>12}")
    rates = {
        "server": server_rate,
        "straight insert": insert_rate,
        "raw driver": raw_rate,
        "bare endpoint": bare_rate,
    }
    for name, rate in rates.items():
        print(f"{name:<18}{rate:>12,.0f}")
    print(f"server / straight insert: {server_rate / insert_rate:.2f}")
    print(f"server / raw driver:      {server_rate / raw_rate:.2f}")
    print(f"server / bare endpoint:   {server_rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()
