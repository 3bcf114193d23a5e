"""Learnings stored while embeddings were off get vectors from reembed."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from tests.conftest import close_app, make_settings
from tests.factories import OrgWithKey
from tests.learnings.helpers import learning_body, publish, search
from tests.learnings.test_semantic import COMPOSE, OTHERS, PARAPHRASE
from trw_platform.app import create_app
from trw_platform.cli import app as cli_app
from trw_platform.core.db import create_engine, create_sessionmaker
from trw_platform.core.settings import get_settings
from trw_platform.learnings import service
from trw_platform.learnings.embeddings import MODEL_NAME, shared_embedder
from trw_platform.learnings.models import Learning
from trw_platform.learnings.reembed import reembed
from trw_platform.learnings.schemas import LearningCreate
from trw_platform.orgs import service as org_service

pytestmark = [pytest.mark.anyio, pytest.mark.learnings]


async def _learnings(db: AsyncSession, org: OrgWithKey) -> dict[str, Learning]:
    result = await db.scalars(
        select(Learning)
        .where(Learning.organization_id == org.organization.id)
        .execution_options(populate_existing=True)
    )
    return {learning.source_learning_id: learning for learning in result}


@pytest.fixture
async def semantic_client(
    database_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with embeddings on, over the same tables as ``db``."""
    application = create_app(make_settings(database_url, tmp_path, EMBEDDINGS=True))
    transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver"
    ) as http:
        yield http
    await close_app(application)


async def test_reembed_gives_missing_vectors(
    client: httpx.AsyncClient,
    db: AsyncSession,
    org: OrgWithKey,
    other_org: OrgWithKey,
    semantic_client: httpx.AsyncClient,
) -> None:
    for fields in [COMPOSE, *OTHERS]:
        await publish(client, org, **fields)
    await publish(client, other_org, **COMPOSE)
    before = await _learnings(db, org)
    assert {learning.embedding_model for learning in before.values()} == {None}
    old_seq = {key: learning.sync_seq for key, learning in before.items()}

    count = await reembed(
        db, embedder=shared_embedder(), organization_id=org.organization.id
    )

    after = await _learnings(db, org)
    assert count == 3
    assert {learning.embedding_model for learning in after.values()} == {MODEL_NAME}
    assert all(after[key].sync_seq > old_seq[key] for key in after)
    assert all(learning.version == 1 for learning in after.values())
    untouched = await _learnings(db, other_org)
    assert untouched["compose-host"].embedding_model is None
    results = await search(semantic_client, org, query=PARAPHRASE, limit=3)
    assert results[0]["source_learning_id"] == "compose-host"


async def test_second_reembed_finds_nothing_to_do(
    client: httpx.AsyncClient, db: AsyncSession, org: OrgWithKey
) -> None:
    await publish(client, org, **COMPOSE)

    first = await reembed(db, embedder=shared_embedder())
    second = await reembed(db, embedder=shared_embedder())
    forced = await reembed(db, embedder=shared_embedder(), every_learning=True)

    assert (first, second, forced) == (1, 0, 1)


def test_reembed_command_reports_count(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRW_SERVER_DATABASE_URL", database_url)
    monkeypatch.setenv("TRW_SERVER_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        slug = asyncio.run(_org_with_unembedded_learning(database_url))
        result = runner.invoke(cli_app, ["learnings", "reembed", "--org", slug])
        unknown = runner.invoke(cli_app, ["learnings", "reembed", "--org", "nope"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    assert "Embedded 1 learnings." in result.output
    assert unknown.exit_code == 1
    assert "Traceback" not in unknown.output


async def _org_with_unembedded_learning(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            organization = await org_service.create_organization(
                session, name=f"Reembed {uuid.uuid4().hex[:8]}"
            )
            await service.publish(
                session,
                organization_id=organization.id,
                key_id="test",
                data=LearningCreate.model_validate(learning_body(**COMPOSE)),
                embedder=None,
            )
            await session.commit()
            return organization.slug
    finally:
        await engine.dispose()
