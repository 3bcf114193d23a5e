"""Publish a learning and run remote recall with trw-mcp 0.62.0, and print what it sent.

Run with the trw-mcp 0.62.0 environment's Python inside a git repository set up
by ``trw-mcp init-project``, whose ``.trw/config.yaml`` sets
``learning_sharing_enabled: true`` (publishing) and
``platform_telemetry_enabled: true`` (remote recall), with ``TRW_PLATFORM_URL``
and ``TRW_PLATFORM_API_KEY`` set.

Usage: ``learnings_mcp_old.py MARKER QUERY``. MARKER is added to the summary and
as a tag; QUERY is sent to ``POST /v1/learnings/search``.

Steps: ``trw-mcp local learn`` records one learning (0.62.0's CLI has no
``--impact`` and stores 0.5, the publish threshold); ``publish_learnings()``
sends it; ``fetch_shared_learnings(QUERY)`` searches with limit 5. Without the
optional sentence-transformers package, ``embedding`` is null in both requests.
"""

from __future__ import annotations

import re
import sys

from _driver_support import HttpRecorder, emit_result, run_console_script

DRIVER = "learnings_mcp_old"


def main() -> None:
    marker, query = sys.argv[1], sys.argv[2]
    recorder = HttpRecorder().install()

    learned = run_console_script(
        "trw-mcp", "local", "learn",
        "--summary", f"Use WAL mode for SQLite readers {marker}",
        "--detail", "Concurrent readers block writers otherwise",
        "--tag", marker,
    )  # fmt: skip
    match = re.search(r"Learning recorded: (\S+)", learned["stdout"])

    from trw_mcp.telemetry.publisher import publish_learnings
    from trw_mcp.telemetry.remote_recall import fetch_shared_learnings

    published = publish_learnings()
    recalled = fetch_shared_learnings(query)

    emit_result(
        DRIVER,
        recorder,
        marker=marker,
        query=query,
        learned=learned,
        learning_id=match.group(1) if match else None,
        published=published,
        recalled=recalled,
    )


if __name__ == "__main__":
    main()
