"""structlog set-up shared by the server, the CLI and uvicorn's own loggers."""

import logging
import sys
from typing import Any

import structlog

_MARKER = "_trw_platform_handler"
_REDACTED = "[redacted]"
_SECRET_FIELDS = frozenset(
    {"authorization", "api_key", "password", "token", "access_token", "secret"}
)


def _redact_secrets(
    _logger: Any, _method: str, event: dict[str, Any]
) -> dict[str, Any]:
    """Blank fields whose names mark them as secrets, in case a caller slips."""
    for name in event.keys() & _SECRET_FIELDS:
        event[name] = _REDACTED
    return event


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    """Route structlog and stdlib logging through one set of processors."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        # Plain tracebacks: rich's show local variables, which may hold secrets.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            exception_formatter=structlog.dev.plain_traceback,
        )

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)

    # Replace only the handler this function installed before, so handlers
    # that others attached (pytest's log capture, say) survive a reconfigure.
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, _MARKER, False)]
    setattr(handler, _MARKER, True)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's access log would repeat the request line this server writes.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
