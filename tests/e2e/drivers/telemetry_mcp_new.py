"""Send telemetry with trw-mcp 9.5.1's own code and print what it sent.

Run with the trw-mcp 9.5.1 environment's Python inside a project whose
``.trw/config.yaml`` sets ``platform_telemetry_enabled: true`` and
``installation_id``, with ``TRW_PLATFORM_URL`` and ``TRW_PLATFORM_API_KEY`` set.

Two paths, as the MCP server uses them:

1. Legacy queue: ``TelemetryClient`` writes one event of each ``TelemetryEvent``
   type to ``.trw/logs/tool-telemetry.jsonl``, stamped with the consent in force,
   and ``BatchSender.from_config().send()`` posts the queue.
2. Pipeline: three calls of tools wrapped with ``wrap_tool`` (one raises) are
   enqueued on ``TelemetryPipeline`` and sent by ``flush_now()``.

The result line contains the queue as written, both send results and every
HTTP exchange.
"""

from __future__ import annotations

import contextlib
import time

from _driver_support import HttpRecorder, emit_result, read_jsonl

DRIVER = "telemetry_mcp_new"


def trw_checkpoint(message: str) -> str:
    time.sleep(0.02)
    return f"saved {message}"


def trw_status() -> str:
    raise RuntimeError("status unavailable")


def main() -> None:
    recorder = HttpRecorder().install()

    from trw_mcp.models.config import get_config
    from trw_mcp.state._paths import resolve_trw_dir
    from trw_mcp.telemetry import (
        BatchSender,
        TelemetryClient,
        TelemetryPipeline,
        wrap_tool,
    )
    from trw_mcp.telemetry.models import (
        CeremonyComplianceEvent,
        FirstSessionEvent,
        SessionEndEvent,
        SessionStartEvent,
        ToolInvocationEvent,
    )

    config = get_config()
    identity = {
        "installation_id": config.installation_id,
        "framework_version": config.framework_version,
    }
    queue_path = resolve_trw_dir() / config.logs_dir / config.telemetry_file

    telemetry = TelemetryClient.from_config()
    for event in (
        FirstSessionEvent(**identity, profile="claude-code"),
        SessionStartEvent(**identity, run_id="run-e2e-1", learnings_loaded=3),
        ToolInvocationEvent(
            **identity, tool_name="trw_recall", duration_ms=120, phase="research"
        ),
        ToolInvocationEvent(
            **identity,
            tool_name="trw_learn",
            duration_ms=45,
            success=False,
            status="error",
            phase="implement",
        ),
        CeremonyComplianceEvent(
            **identity,
            run_id="run-e2e-1",
            score=80,
            phases_completed=["research", "plan"],
        ),
        SessionEndEvent(
            **identity, total_duration_ms=5000, tools_invoked=2, ceremony_score=80
        ),
    ):
        telemetry.record_event(event)
    written = telemetry.flush()
    legacy_queue = read_jsonl(queue_path)
    batch_result = BatchSender.from_config().send()
    queue_after_send = read_jsonl(queue_path)

    checkpoint = wrap_tool(trw_checkpoint, session_id_resolver=lambda: "sess-e2e-new")
    status = wrap_tool(trw_status, session_id_resolver=lambda: "sess-e2e-new")
    checkpoint("first")
    checkpoint("second")
    with contextlib.suppress(RuntimeError):
        status()
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
