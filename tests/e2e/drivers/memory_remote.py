"""Publish, recall with shared results and forget with trw-memory 5.4.0.

The calls go through ``MemoryClient``, the package's public API.

Run with the trw-memory 5.4.0 environment's Python inside a project whose
``.trw/config.yaml`` sets ``learning_sharing_enabled: true`` (publishing) and
``team_sync_enabled: true`` (shared recall), with ``MEMORY_PLATFORM_URL``,
``MEMORY_PLATFORM_API_KEY`` and ``TRW_DEBUG=true`` (trw-memory rejects a
plain-http platform URL otherwise).

Usage: ``memory_remote.py MARKER QUERY``.

Steps:

1. ``store`` one memory at importance 0.9, which a background task publishes
   with ``POST /v1/learnings``. The client keeps the response ``id`` as the
   entry's ``remote_id``. A second memory at 0.3 is below
   ``sync_min_importance`` (0.7) and stays local.
2. ``recall(QUERY, include_shared=True)`` adds shared results from
   ``POST /v1/learnings/search`` (limit 10, ``min_impact`` 0.7). Shared rows whose
   ``source_learning_id`` is a local id are dropped, so the client never sees
   its own published memory there.
3. ``forget`` the published memory, which retires it in a background task
   (``PATCH /v1/learnings/{remote_id}/status`` with ``{"status": "obsolete"}``).

The client also opens ``GET /v1/learnings/stream`` (Server-Sent Events) in the
background while sync is on; the driver exits without waiting for it.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from _driver_support import HttpRecorder, emit_result

DRIVER = "memory_remote"
NAMESPACE = "project:e2e"


async def wait_for_background(client: Any) -> None:
    # MemoryClient runs publish and retire as tasks and exposes no public wait.
    pending = list(client._background_tasks)
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


async def run(marker: str, query: str) -> dict[str, Any]:
    from trw_memory.client import MemoryClient

    async with MemoryClient(namespace=NAMESPACE) as client:
        published = await client.store(
            f"Pin httpx below 1.0 in CI images {marker}",
            tags=[marker, "httpx"],
            importance=0.9,
            detail="httpx 1.0 removes the proxies argument",
        )
        local_only = await client.store(
            f"Scratch note {marker}", tags=[marker], importance=0.3
        )
        await wait_for_background(client)
        stored = client._get_backend().get(published["memory_id"], namespace=NAMESPACE)
        remote_id = stored.remote_id if stored is not None else None

        recalled = await client.recall(query, include_shared=True)

        forgotten = await client.forget(published["memory_id"])
        await wait_for_background(client)

    return {
        "marker": marker,
        "query": query,
        "published": published,
        "local_only": local_only,
        "remote_id": remote_id,
        "recalled": recalled,
        "shared": [row for row in recalled if row.get("source") == "shared"],
        "forgotten": forgotten,
    }


def main() -> None:
    marker, query = sys.argv[1], sys.argv[2]
    recorder = HttpRecorder().install()
    outcome = asyncio.run(run(marker, query))
    emit_result(DRIVER, recorder, **outcome)


if __name__ == "__main__":
    main()
