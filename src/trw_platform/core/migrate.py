"""Run Alembic migrations from code, for ``trw-platform migrate`` and ``serve``."""

import asyncio
import threading
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
FILE_TEMPLATE = "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("file_template", FILE_TEMPLATE)
    return config


def _in_thread(target: object, *args: object) -> None:
    # env.py calls asyncio.run(), which cannot nest inside a running loop.
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target(*args)  # type: ignore[operator]
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Apply migrations up to ``revision``; a current database is left as is."""
    log.info("migrations.started", revision=revision)
    _in_thread(command.upgrade, alembic_config(database_url), revision)
    log.info("migrations.finished", revision=revision)


def downgrade(database_url: str, revision: str) -> None:
    _in_thread(command.downgrade, alembic_config(database_url), revision)


def head_revisions() -> tuple[str, ...]:
    """Return every head: each domain keeps its own branch of migrations."""
    return tuple(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


async def current_revisions(database_url: str) -> tuple[str, ...]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_heads()
            )
    finally:
        await engine.dispose()


def current_revisions_sync(database_url: str) -> tuple[str, ...]:
    return asyncio.run(current_revisions(database_url))
