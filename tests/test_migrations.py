"""Migrations: the head matches the models and every step reverses."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from trw_platform.core import migrate
from trw_platform.models import Base, include_name


def pending_changes(database_url: str) -> list:
    async def compare() -> list:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(
                            sync, opts={"include_name": include_name}
                        ),
                        Base.metadata,
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(compare())


def test_migration_head_matches_models(database_url: str) -> None:
    assert pending_changes(database_url) == []


def test_downgrade_to_base_and_back(database_url: str) -> None:
    migrate.downgrade(database_url, "base")
    assert migrate.current_revisions_sync(database_url) == ()

    migrate.upgrade(database_url)

    assert set(migrate.current_revisions_sync(database_url)) == set(
        migrate.head_revisions()
    )
    assert pending_changes(database_url) == []
