"""Rank the eval queries with trw-memory's own local hybrid retrieval.

Runs inside a virtual environment that has trw-memory installed, started by
``search_quality.py``, which sends the corpus, the queries and their vectors
as JSON on standard input and reads the rankings as JSON from standard output.

The call is ``trw_memory.retrieval.pipeline.hybrid_search_scored`` with the
defaults of trw-memory 5.4.0's ``MemoryConfig``: BM25 (rank_bm25) and dense
candidates 50 each, RRF with k=5, and final = 0.7 * normalised RRF + 0.3 *
importance. It is given the same all-MiniLM-L6-v2 vectors as the server,
because trw-memory's default model (BAAI/bge-small-en-v1.5) would be fetched
from the Hugging Face hub, and nothing here downloads models.
"""

import json
import sys
import time
from typing import Any

from trw_memory.models.config import MemoryConfig
from trw_memory.models.memory import MemoryEntry
from trw_memory.retrieval.pipeline import hybrid_search_scored
from trw_memory.security.namespace_scope import authorize_namespaces
from trw_memory.security.rbac import Permission


def _entries(learnings: list[dict[str, Any]]) -> list[MemoryEntry]:
    return [
        MemoryEntry(
            id=item["key"],
            content=item["summary"],
            detail=item["detail"],
            tags=item["tags"],
            importance=item["impact"],
        )
        for item in learnings
    ]


def _passes(item: dict[str, Any], query_filter: dict[str, Any]) -> bool:
    if item["impact"] < query_filter.get("min_impact", 0.0):
        return False
    types = query_filter.get("types")
    return types is None or item["type"] in types


def main() -> None:
    document = json.load(sys.stdin)
    learnings = document["learnings"]
    config = MemoryConfig()
    scope = authorize_namespaces(config, ["default"], Permission.READ, "recall")
    entries = {entry.id: entry for entry in _entries(learnings)}
    vectors = document["vectors"]

    rankings = []
    for query in document["queries"]:
        allowed = [
            entries[item["key"]]
            for item in learnings
            if _passes(item, query.get("filter", {}))
        ]
        started = time.perf_counter()
        scored = hybrid_search_scored(
            query["query"],
            allowed,
            scope=scope,
            query_embedding=query["vector"],
            stored_embeddings={entry.id: vectors[entry.id] for entry in allowed},
            bm25_candidates=config.bm25_candidates,
            vector_candidates=config.vector_candidates,
            rrf_k=config.rrf_k,
            importance_alpha=config.rrf_importance_alpha,
            top_k=document["limit"],
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        keys = [candidate.entry.id for candidate in scored]
        rankings.append({"id": query["id"], "keys": keys, "ms": elapsed_ms})
    json.dump({"rankings": rankings}, sys.stdout)


if __name__ == "__main__":
    main()
