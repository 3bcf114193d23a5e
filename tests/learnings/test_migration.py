"""The learnings migration creates exactly what the models describe."""

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from trw_platform.core.db import create_engine
from trw_platform.models import Base

pytestmark = [pytest.mark.anyio, pytest.mark.learnings]

TABLES = {"learnings", "learning_tags", "learning_sequences"}


def _include(
    obj: Any, name: str | None, type_: str, _reflected: bool, _other: Any
) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return table is not None and table.name in TABLES


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"include_object": _include, "compare_type": True}
    )
    return compare_metadata(context, Base.metadata)


async def test_models_match_migration(database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    await engine.dispose()

    assert differences == []


async def test_keyword_index_exists(database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            names = await connection.run_sync(
                lambda sync: inspect(sync).get_table_names()
            )
            assert "learnings_fts" in names
        else:
            method = await connection.scalar(
                text(
                    "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam"
                    " WHERE c.relname = 'ix_learnings_search_vector'"
                )
            )
            assert method == "gin"
    await engine.dispose()
