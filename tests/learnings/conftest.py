"""Learnings fixtures: embeddings off unless a test requests the model."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import close_app, empty_tables, make_settings
from tests.factories import OrgWithKey, make_org_with_key
from trw_platform.app import create_app
from trw_platform.core.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, EMBEDDINGS=False)


@pytest.fixture
async def org(db: AsyncSession) -> OrgWithKey:
    return await make_org_with_key(db, "Acme")


@pytest.fixture
async def other_org(db: AsyncSession) -> OrgWithKey:
    return await make_org_with_key(db, "Globex")


@pytest.fixture
async def semantic_app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """An application with embeddings on; the model loads once per process."""
    application = create_app(make_settings(database_url, tmp_path, EMBEDDINGS=True))
    await empty_tables(application)
    yield application
    await close_app(application)


@pytest.fixture
async def semantic_client(semantic_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=semantic_app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver"
    ) as http:
        yield http
