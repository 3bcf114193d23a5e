from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.databases import BACKENDS, migrated_database
from trw_platform.app import create_app
from trw_platform.core.settings import Settings
from trw_platform.models import Base

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256-signing"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp(request.param)
    with migrated_database(request.param, folder) as url:
        yield url


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "DATABASE_URL": database_url,
        "DATA_DIR": data_dir,
        "SECRET_KEY": TEST_SECRET,
        "REDIS_URL": "",
        "LOG_LEVEL": "warning",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def close_app(app: FastAPI) -> None:
    """Release what the lifespan would release; ASGITransport runs no lifespan."""
    await app.state.telemetry_writer.close()
    if app.state.sqlite_reader is not None:
        await app.state.sqlite_reader.close()
    await app.state.limiter.aclose()
    await app.state.engine.dispose()


async def empty_tables(app: FastAPI) -> None:
    engine = app.state.engine
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(table.name for table in Base.metadata.sorted_tables)
            await connection.execute(text(f"TRUNCATE {names} CASCADE"))
            return
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    await empty_tables(application)
    yield application
    await close_app(application)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver"
    ) as http:
        yield http


@pytest.fixture
async def db(app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session on the app's database, for arranging data and checking it."""
    async with app.state.sessionmaker() as session:
        yield session
