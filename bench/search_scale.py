"""Time search with many learnings in one organization, on SQLite or PostgreSQL.

The corpus repeats the labelled learnings with a numbered variant of each
summary and random words from the whole set, so keyword queries match many
rows and every vector is distinct. Requests go through POST
/v1/learnings/search in process (httpx over ASGI, no network), and the server
embeds each query itself, as it does for clients that send no vector. As a
baseline, the same run times GET /v1/health through the same client: what
the framework, the middleware and the in-process transport cost with no
database work.

    .venv/bin/python bench/search_scale.py [--learnings 10000] [--backend sqlite]
"""

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from search_support import (
    EVAL_PATH,
    BenchDatabase,
    bench_database,
    embed_texts,
    emit,
    load_learnings,
    percentile,
    unit,
)

from trw_platform.app import create_app
from trw_platform.core.logging import configure_logging
from trw_platform.core.settings import Settings
from trw_platform.learnings.embeddings import document_text

REQUESTS = 300
SEED = 20261204


def synthetic_learnings(count: int) -> list[dict[str, Any]]:
    """Return ``count`` distinct learnings built from the labelled set."""
    base = json.loads(EVAL_PATH.read_text(encoding="utf-8"))["learnings"]
    rng = random.Random(SEED)
    vocabulary = sorted({word for item in base for word in item["summary"].split()})
    learnings = []
    for index in range(count):
        item = base[index % len(base)]
        words = " ".join(rng.sample(vocabulary, 6))
        learnings.append(
            {
                "summary": f"{item['summary']} (variant {index}: {words})"[:1000],
                "detail": item["detail"],
                "tags": [*item["tags"][:19], f"group-{index % 40}"],
                "impact": round(rng.uniform(0.1, 1.0), 2),
                "type": item["type"],
                "status": "obsolete" if index % 20 == 0 else "active",
                "source_project": f"{index % 8:016x}",
                "source_learning_id": f"S-{index}",
            }
        )
    return learnings


def _settings(database: BenchDatabase, folder: Path) -> Settings:
    return Settings(
        DATABASE_URL=database.url,
        DATA_DIR=folder,
        SECRET_KEY="bench-secret-key-that-is-long-enough-for-signing",
        LOG_LEVEL="warning",
        RATE_LIMIT_ENABLED=False,
        EMBEDDINGS=True,
    )


async def _time_requests(
    http: httpx.AsyncClient, headers: dict[str, str], bodies: list[dict[str, Any]]
) -> list[float]:
    latencies = []
    for body in bodies:
        started = time.perf_counter()
        response = await http.post("/v1/learnings/search", json=body, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return latencies


def _request_bodies() -> list[dict[str, Any]]:
    queries = json.loads(EVAL_PATH.read_text(encoding="utf-8"))["queries"]
    bodies = []
    for index in range(REQUESTS):
        query = queries[index % len(queries)]
        # A suffix per round makes every query text distinct, so no cache can help.
        text = query["query"] if index < len(queries) else f"{query['query']} {index}"
        bodies.append(
            {"query": text, "limit": 10, "min_impact": 0.3 if index % 3 else 0.0}
        )
    return bodies


async def run_scale(backend: str, count: int, folder: Path) -> None:
    learnings = synthetic_learnings(count)
    vectors = embed_texts(
        [document_text(item["summary"], item["detail"]) for item in learnings]
    )
    async with bench_database(backend, folder) as database:
        rate = await load_learnings(database, learnings, vectors)
        app = create_app(_settings(database, folder))
        headers = {"Authorization": f"Bearer {database.raw_key}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench"
        ) as http:
            first = await _time_requests(
                http, headers, [{"query": "warm the model up"}]
            )
            cold = await _time_requests(
                http, headers, [{"query": "first search after start"}]
            )
            bodies = _request_bodies()
            floor = await _time_health(http)
            latencies = await _time_requests(http, headers, bodies)
            with_vectors = await _time_requests(
                http, headers, _with_query_vectors(bodies)
            )
        await app.state.engine.dispose()

    emit(f"\nSearch latency: {count} learnings in one organization, {backend}")
    emit(f"  publish through the service: {rate:.0f} learnings/s (vectors precomputed)")
    emit(f"  first request (loads the model and the vector cache): {first[0]:.0f} ms")
    emit(f"  next request: {cold[0]:.1f} ms")
    _emit_latencies("requests, server embeds the query", latencies)
    _emit_latencies("requests with a client query vector", with_vectors)
    _emit_latencies("GET /v1/health requests (baseline)", floor)


async def _time_health(http: httpx.AsyncClient) -> list[float]:
    latencies = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = await http.get("/v1/health")
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return latencies


def _emit_latencies(label: str, latencies: list[float]) -> None:
    emit(
        f"  {len(latencies)} {label}: p50 {percentile(latencies, 0.5):.1f} ms,"
        f" p95 {percentile(latencies, 0.95):.1f} ms, max {max(latencies):.1f} ms"
    )


def _with_query_vectors(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add a query vector, as trw-mcp 0.62 sends with each query.

    The vector comes from the server's int8 model, a stand-in for the fp32
    all-MiniLM-L6-v2 vector of trw-mcp: the two had cosine at least 0.9986.
    """
    vectors = embed_texts([body["query"] for body in bodies])
    return [
        {**body, "embedding": unit(vector)}
        for body, vector in zip(bodies, vectors, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learnings", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run_scale(args.backend, args.learnings, Path(folder)))


if __name__ == "__main__":
    main()
