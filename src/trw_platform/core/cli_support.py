"""Helpers for CLI commands that need a database session."""

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.core import migrate
from trw_platform.core.db import create_engine, create_sessionmaker
from trw_platform.core.errors import AppError
from trw_platform.core.settings import get_settings

T = TypeVar("T")

# Piped output gets a wide fixed width, so tables of ids stay whole for tools.
PIPE_WIDTH = 200
console = Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)
error_console = Console(stderr=True, width=None if sys.stderr.isatty() else PIPE_WIDTH)


class DatabaseNotReady(Exception):
    """The database is missing, unreachable or not migrated to the latest schema."""


def _check_file(database_url: str) -> None:
    # Connecting to a missing SQLite file would create an empty database.
    url = make_url(database_url)
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and not Path(database).exists():
        raise DatabaseNotReady(
            f"no database at {database}: run 'trw-platform migrate' or"
            " 'trw-platform serve' first"
        )


async def _check_schema(database_url: str) -> None:
    try:
        current = await migrate.current_revisions(database_url)
    except (DBAPIError, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise DatabaseNotReady(f"cannot open the database: {reason}") from exc
    if set(current) != set(migrate.head_revisions()):
        raise DatabaseNotReady(
            "the database schema is not the latest: run 'trw-platform migrate'"
        )


def run_in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction.

    AppErrors, and a database that is not ready, exit with status 1.
    """

    database_url = get_settings().database_url

    async def run() -> T:
        _check_file(database_url)
        await _check_schema(database_url)
        engine = create_engine(database_url)
        try:
            async with create_sessionmaker(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except AppError as exc:
        error_console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from exc
    except DatabaseNotReady as exc:
        error_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
