"""Helpers for CLI commands that need a database session."""

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.core.db import create_engine, create_sessionmaker
from trw_platform.core.errors import AppError
from trw_platform.core.settings import get_settings

T = TypeVar("T")

# Piped output gets a wide fixed width, so tables of ids stay whole for tools.
PIPE_WIDTH = 200
console = Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)
error_console = Console(stderr=True, width=None if sys.stderr.isatty() else PIPE_WIDTH)


def run_in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction; AppErrors exit with status 1."""

    async def run() -> T:
        engine = create_engine(get_settings().database_url)
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
