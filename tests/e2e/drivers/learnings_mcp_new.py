"""Publish learnings with trw-mcp 9.5.1's ``publish_learnings`` and print what it sent.

Run with the trw-mcp 9.5.1 environment's Python inside a project set up by
``trw-mcp init-project`` whose ``.trw/config.yaml`` sets
``learning_sharing_enabled: true`` and ``installation_id``, with
``TRW_PLATFORM_URL`` and ``TRW_PLATFORM_API_KEY`` set.

Usage: ``learnings_mcp_new.py MARKER``. MARKER is added to each summary and as
a tag so a test can find these learnings on a shared server.

Steps, each with its ``publish_learnings`` result:

1. ``trw-mcp local learn`` records one learning at impact 0.8 and one at 0.3.
2. ``first``: publishes the 0.8 one; the 0.3 one is below the 0.5 threshold.
3. ``unchanged``: nothing changed, so nothing is sent.
4. ``forced``: ``force=True`` sends the same payload again, with the same
   ``source_learning_id``.
5. ``edited``: the stored YAML entry gets a new summary and impact 0.9 and is sent
   again under the same ``source_learning_id``.

``local learn`` starts the trw-memory daemon, which the harness stops afterwards.
"""

from __future__ import annotations

import re
import sys

from _driver_support import HttpRecorder, emit_result, run_console_script

DRIVER = "learnings_mcp_new"


def main() -> None:
    marker = sys.argv[1]
    recorder = HttpRecorder().install()

    learned = [
        run_console_script(
            "trw-mcp", "local", "learn",
            "--summary", f"SQLite WAL needs fsync on close {marker}",
            "--detail", "Observed data loss after power cut without fsync",
            "--tag", marker, "--tag", "sqlite", "--impact", "0.8",
        ),
        run_console_script(
            "trw-mcp", "local", "learn",
            "--summary", f"Low impact note {marker}",
            "--detail", "Below the publish threshold",
            "--tag", marker, "--impact", "0.3",
        ),
    ]  # fmt: skip
    ids = [
        m.group(1)
        for r in learned
        if (m := re.search(r"Learning recorded: (\S+)", r["stdout"]))
    ]

    from ruamel.yaml import YAML
    from trw_mcp.state._paths import resolve_trw_dir
    from trw_mcp.telemetry import publish_learnings

    first = publish_learnings()
    unchanged = publish_learnings()
    forced = publish_learnings(force=True)

    entries_dir = resolve_trw_dir() / "learnings" / "entries"
    yaml = YAML()
    edited_summary = f"SQLite WAL needs fsync before close {marker}"
    edited_id = None
    for path in sorted(entries_dir.glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"))
        if data and float(data.get("impact", 0)) >= 0.5:
            data["summary"] = edited_summary
            data["impact"] = 0.9
            edited_id = str(data["id"])
            with path.open("w", encoding="utf-8") as handle:
                yaml.dump(data, handle)
    edited = publish_learnings()

    emit_result(
        DRIVER,
        recorder,
        marker=marker,
        learned=learned,
        learning_ids=ids,
        edited_id=edited_id,
        edited_summary=edited_summary,
        first=first,
        unchanged=unchanged,
        forced=forced,
        edited=edited,
    )


if __name__ == "__main__":
    main()
