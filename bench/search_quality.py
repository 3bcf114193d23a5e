"""Measure search quality and latency, side by side with trw-memory 5.4.0.

Part 1 loads the labelled learnings and queries of
bench/data/search_eval.json through the learnings service into a fresh SQLite
database and a fresh PostgreSQL database. It ranks every query keyword only,
vector only and fused, as the server does on each, and once with trw-memory
5.4.0's own local hybrid retrieval (``bench/trw_memory_runner.py``) on the same
learnings and the same all-MiniLM-L6-v2 vectors. It prints recall@5, MRR and
per-query latency. Query vectors are computed once beforehand and handed to
every method, so these latencies leave out query embedding, which a separate
row measures.

Part 2 (``bench/search_scale.py``) times POST /v1/learnings/search with
10,000 learnings in one organization on SQLite and on PostgreSQL.

    .venv/bin/python bench/search_quality.py [--scale 10000] [--skip-scale]
        [--backends sqlite,postgresql] [--quality-backends sqlite,postgresql]
        [--trw-memory-python PATH]

trw-memory runs in its own virtual environment, created under .cache/bench
with ``pip install trw-memory==5.4.0`` unless --trw-memory-python names one.
Recall@5 counts the share of a query's graded learnings (any grade) found in
the first five results; MRR takes the first result graded 3 (the exact answer)
among the first ten.
"""

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from search_scale import run_scale
from search_support import (
    CACHE_DIR,
    EVAL_PATH,
    ROOT,
    bench_database,
    embed_texts,
    emit,
    load_learnings,
    percentile,
    unit,
)

from trw_platform.core.logging import configure_logging
from trw_platform.learnings.embeddings import document_text, shared_embedder
from trw_platform.learnings.schemas import LearningSearch
from trw_platform.learnings.search import SearchRuntime, search
from trw_platform.learnings.vector_index import VectorIndex

TRW_MEMORY_VERSION = "5.4.0"
BACKEND_LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
RESULT_DEPTH = 10
MODES = {
    "keyword only": frozenset({"keyword"}),
    "vector only": frozenset({"vector"}),
    "fused": frozenset({"keyword", "vector"}),
}


def recall_at_5(keys: list[str], relevant: dict[str, int]) -> float:
    return len(set(keys[:5]) & set(relevant)) / len(relevant)


def reciprocal_rank(keys: list[str], relevant: dict[str, int]) -> float:
    for rank, key in enumerate(keys[:RESULT_DEPTH], start=1):
        if relevant.get(key) == 3:
            return 1.0 / rank
    return 0.0


def _search_request(
    query: dict[str, Any], vector: list[float] | None
) -> LearningSearch:
    query_filter = query.get("filter", {})
    return LearningSearch(
        query=query["query"],
        limit=RESULT_DEPTH,
        min_impact=query_filter.get("min_impact", 0.0),
        type=query_filter.get("types"),
        embedding=vector,
    )


async def _rank_server(
    database: Any,
    queries: list[dict],
    vectors: dict[str, list[float]] | None,
    mode: frozenset[str],
) -> list[dict[str, Any]]:
    embedder = shared_embedder()
    runtime = SearchRuntime(
        embedder=embedder,
        index=VectorIndex(model_name=embedder.model_name, dimension=embedder.dimension),
    )
    rankings = []
    async with database.session() as session:
        for query in [queries[0], *queries]:  # the first call loads the cache
            request = _search_request(query, vectors[query["id"]] if vectors else None)
            started = time.perf_counter()
            results = await search(
                session,
                organization_id=database.organization_id,
                request=request,
                runtime=runtime,
                rankings=mode,
            )
            elapsed_ms = (time.perf_counter() - started) * 1000
            keys = [result.source_learning_id for result in results]
            rankings.append({"id": query["id"], "keys": keys, "ms": elapsed_ms})
    return rankings[1:]


def _trw_memory_python(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    venv = CACHE_DIR / f"trw-memory-{TRW_MEMORY_VERSION}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                f"trw-memory=={TRW_MEMORY_VERSION}",
            ],
            check=True,
        )
    return python


def _rank_trw_memory(
    python: Path,
    learnings: list[dict],
    queries: list[dict],
    doc_vectors: np.ndarray,
    query_vectors: dict,
) -> list[dict[str, Any]]:
    payload = {
        "learnings": learnings,
        "vectors": {
            item["key"]: unit(vector)
            for item, vector in zip(learnings, doc_vectors, strict=True)
        },
        "queries": [
            {**query, "vector": query_vectors[query["id"]]} for query in queries
        ],
        "limit": RESULT_DEPTH,
    }
    completed = subprocess.run(
        [str(python), str(ROOT / "bench" / "trw_memory_runner.py")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout)["rankings"]


def _summarize(name: str, rankings: list[dict], queries: list[dict]) -> dict[str, Any]:
    by_id = {query["id"]: query for query in queries}
    recalls = [
        recall_at_5(item["keys"], by_id[item["id"]]["relevant"]) for item in rankings
    ]
    ranks = [
        reciprocal_rank(item["keys"], by_id[item["id"]]["relevant"])
        for item in rankings
    ]
    kinds: dict[str, list[float]] = defaultdict(list)
    for item, recall in zip(rankings, recalls, strict=True):
        kinds[by_id[item["id"]]["kind"]].append(recall)
    latencies = [item["ms"] for item in rankings]
    return {
        "name": name,
        "recall@5": float(np.mean(recalls)),
        "mrr": float(np.mean(ranks)),
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "kinds": {
            kind: float(np.mean(values)) for kind, values in sorted(kinds.items())
        },
    }


def _print_quality(rows: list[dict[str, Any]], counts: tuple[int, int]) -> None:
    emit(f"\nSearch quality: {counts[0]} learnings, {counts[1]} queries")
    kinds = list(rows[0]["kinds"])
    header = f"{'method':<38}{'recall@5':>9}{'MRR':>7}{'p50 ms':>8}{'p95 ms':>8}"
    emit(header + "".join(f"{kind[:10]:>11}" for kind in kinds))
    for row in rows:
        line = f"{row['name']:<38}{row['recall@5']:>9.3f}{row['mrr']:>7.3f}"
        line += f"{row['p50']:>8.2f}{row['p95']:>8.2f}"
        emit(line + "".join(f"{row['kinds'][kind]:>11.3f}" for kind in kinds))
    emit("(columns after p95: recall@5 by query kind)")


async def run_quality(args: argparse.Namespace, folder: Path) -> None:
    document = json.loads(EVAL_PATH.read_text(encoding="utf-8"))
    learnings = [
        {**item, "source_learning_id": item["key"], "source_project": "eval"}
        for item in document["learnings"]
    ]
    queries = document["queries"]
    doc_vectors = embed_texts(
        [document_text(item["summary"], item["detail"]) for item in learnings]
    )
    query_vectors = {
        query["id"]: unit(vector)
        for query, vector in zip(
            queries, embed_texts([q["query"] for q in queries]), strict=True
        )
    }

    rows = []
    for backend in args.quality_backends.split(","):
        async with bench_database(backend.strip(), folder) as database:
            await load_learnings(database, learnings, doc_vectors)
            for name, mode in MODES.items():
                rankings = await _rank_server(database, queries, query_vectors, mode)
                label = f"{BACKEND_LABELS[database.backend]} {name}"
                rows.append(_summarize(label, rankings, queries))
            rankings = await _rank_server(database, queries, None, MODES["fused"])
            label = f"{BACKEND_LABELS[database.backend]} fused, embeds query"
            rows.append(_summarize(label, rankings, queries))

    if not args.skip_trw_memory:
        python = _trw_memory_python(args.trw_memory_python)
        rankings = _rank_trw_memory(
            python, learnings, queries, doc_vectors, query_vectors
        )
        rows.append(
            _summarize(f"trw-memory {TRW_MEMORY_VERSION} hybrid", rankings, queries)
        )
    _print_quality(rows, (len(learnings), len(queries)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=int, default=10_000, help="Learnings in the latency run."
    )
    parser.add_argument(
        "--skip-scale", action="store_true", help="Skip the latency run."
    )
    parser.add_argument(
        "--skip-trw-memory", action="store_true", help="Skip trw-memory."
    )
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="Databases of the latency run."
    )
    parser.add_argument(
        "--quality-backends",
        default="sqlite,postgresql",
        help="Databases of the quality run.",
    )
    parser.add_argument("--trw-memory-python", help="Python of a venv with trw-memory.")
    args = parser.parse_args()
    configure_logging("warning")

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run_quality(args, Path(folder)))
        if not args.skip_scale:
            for backend in args.backends.split(","):
                asyncio.run(run_scale(backend.strip(), args.scale, Path(folder)))


if __name__ == "__main__":
    main()
