"""Test databases: one migrated SQLite file and one PostgreSQL database per run.

The backends come from ``TRW_TEST_BACKENDS`` (default ``sqlite,postgresql``).
PostgreSQL is reached at ``TRW_TEST_POSTGRES_URL`` (default the local server,
user postgres, database test); an unreachable server fails the run.
"""

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from trw_platform.core import migrate

POSTGRES_ADMIN_URL = os.environ.get(
    "TRW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = [
    name.strip()
    for name in os.environ.get("TRW_TEST_BACKENDS", "sqlite,postgresql").split(",")
    if name.strip()
]


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _postgres_url(database: str) -> str:
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{database}"


@contextmanager
def migrated_database(backend: str, folder: Path) -> Iterator[str]:
    """Yield the URL of a new, fully migrated database; drop it afterwards."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'test.db'}"
        migrate.upgrade(url)
        yield url
        return

    if backend != "postgresql":
        raise ValueError(f"unknown test backend {backend!r}")
    name = f"trw_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = _postgres_url(name)
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
