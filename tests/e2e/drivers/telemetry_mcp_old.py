"""Send the legacy telemetry queue with trw-mcp 0.62.0 and print what it sent.

Run with the trw-mcp 0.62.0 environment's Python inside a project whose
``.trw/config.yaml`` sets ``platform_telemetry_enabled: true`` and
``installation_id``, with ``TRW_PLATFORM_URL`` and ``TRW_PLATFORM_API_KEY`` set.

The queue ``.trw/logs/tool-telemetry.jsonl`` is filled the way the 0.62.0 MCP
server fills it:

* ``TelemetryClient`` writes one event of each ``TelemetryEvent`` type,
  ``first_session`` included.
* Three calls of tools wrapped with ``log_tool_call`` (one raises) write
  detailed records (``event: "tool_call"``, ``tool``, ``args_hash``,
  ``duration_ms``, ``result_summary``, ``success``, no ``event_type``), and also
  enqueue one pipeline event each.
* Two rows left from before consent: one stamped ``_trw_consent: false`` and one
  without the stamp, as versions before the stamp wrote them. ``BatchSender``
  must drop both without sending them.

Then ``BatchSender.from_config().send()`` posts the queue and
``TelemetryPipeline.flush_now()`` posts the pipeline events.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime

from _driver_support import HttpRecorder, emit_result, read_jsonl

DRIVER = "telemetry_mcp_old"
PRE_CONSENT_RUN_ID = "run-before-consent"


def main() -> None:
    recorder = HttpRecorder().install()

    from trw_mcp.models.config import get_config
    from trw_mcp.state._paths import resolve_trw_dir
    from trw_mcp.telemetry import BatchSender, TelemetryClient, TelemetryPipeline
    from trw_mcp.telemetry.anonymizer import anonymize_installation_id
    from trw_mcp.telemetry.models import (
        CeremonyComplianceEvent,
        FirstSessionEvent,
        SessionEndEvent,
        SessionStartEvent,
        ToolInvocationEvent,
    )
    from trw_mcp.tools.telemetry import log_tool_call

    config = get_config()
    identity = {
        "installation_id": config.installation_id,
        "framework_version": config.framework_version,
    }
    queue_path = resolve_trw_dir() / config.logs_dir / config.telemetry_file

    telemetry = TelemetryClient.from_config()
    for event in (
        FirstSessionEvent(**identity, profile="cursor-ide"),
        SessionStartEvent(**identity, run_id="run-e2e-old", learnings_loaded=1),
        ToolInvocationEvent(
            **identity, tool_name="trw_init", duration_ms=310, phase="plan"
        ),
        CeremonyComplianceEvent(
            **identity, run_id="run-e2e-old", score=55, phases_completed=["plan"]
        ),
        SessionEndEvent(
            **identity, total_duration_ms=9000, tools_invoked=4, ceremony_score=55
        ),
    ):
        telemetry.record_event(event)
    written = telemetry.flush()

    @log_tool_call  # type: ignore[untyped-decorator,unused-ignore]
    def trw_recall(query: str) -> dict[str, int]:
        time.sleep(0.01)
        return {"matches": len(query)}

    @log_tool_call  # type: ignore[untyped-decorator,unused-ignore]
    def trw_learn(summary: str) -> dict[str, str]:
        raise ValueError(f"summary too short: {summary!r}")

    trw_recall("sqlite wal")
    trw_recall(query="httpx proxies")
    with contextlib.suppress(ValueError):
        trw_learn("x")

    stale_rows = [
        {
            "timestamp": datetime.now(UTC).isoformat(),
            "installation_id": anonymize_installation_id(config.installation_id),
            "framework_version": config.framework_version,
            "event_type": "session_start",
            "run_id": PRE_CONSENT_RUN_ID,
            "learnings_loaded": 0,
            "_trw_consent": False,
        },
        {
            "ts": datetime.now(UTC).isoformat(),
            "event": "tool_call",
            "tool": "trw_before_consent",
            "args_hash": "00000000",
            "duration_ms": 1.0,
            "result_summary": "",
            "success": True,
        },
    ]
    with queue_path.open("a", encoding="utf-8") as queue:
        for row in stale_rows:
            queue.write(json.dumps(row) + "\n")

    legacy_queue = read_jsonl(queue_path)
    batch_result = BatchSender.from_config().send()
    queue_after_send = read_jsonl(queue_path)

    pipeline = TelemetryPipeline.get_instance()
    pipeline_result = pipeline.flush_now()
    # Stops the 30 s flush timer and unregisters the exit-time drain, so nothing
    # is sent after the result line.
    pipeline.stop(drain=False)

    emit_result(
        DRIVER,
        recorder,
        installation_id=config.installation_id,
        legacy_written=written,
        legacy_queue=legacy_queue,
        batch_sender=batch_result,
        queue_after_send=queue_after_send,
        pipeline=pipeline_result,
    )


if __name__ == "__main__":
    main()
