"""Per-request plumbing: request ids, access log, body cap, rate limit, 500s.

This is a pure ASGI middleware rather than a Starlette ``BaseHTTPMiddleware``
so that it receives every response, the 500 for an unexpected exception included,
and can stamp ``X-Request-ID`` and the rate-limit headers on all of them.
"""

import asyncio
import re
import time
import uuid
from ipaddress import ip_address
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trw_platform.core.errors import (
    INTERNAL_ERROR_DETAIL,
    AppError,
    BadRequest,
    PayloadTooLarge,
    error_body,
)
from trw_platform.core.ratelimit import STATE_KEY, RateLimiter, rate_limit_headers

log = structlog.get_logger(__name__)

_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Maximum idle time between chunks of a request body before it fails with 408.
BODY_IDLE_TIMEOUT_S = 20.0
# The status nginx logs for a client that closed the connection first.
CLIENT_CLOSED_REQUEST = 499


def client_ip(scope: Scope) -> str:
    """Return the client address, or "unknown" when it is missing or not an IP.

    Behind a trusted proxy uvicorn sets it from X-Forwarded-For, which a
    client may fill with anything.
    """
    client = scope.get("client")
    if not client:
        return "unknown"
    try:
        return str(ip_address(client[0]))
    except ValueError:
        return "unknown"


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, *, limiter: RateLimiter, max_body_bytes: int
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        _strip_trailing_slash(scope)
        structlog.contextvars.bind_contextvars(request_id=request_id)

        response: dict[str, Any] = {"status": 500, "started": False}
        started_at = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["started"] = True
                _add_headers(message, request_id, scope)
            await send(message)

        try:
            await self._dispatch(scope, receive, send_with_headers)
        except ClientDisconnect:
            # Nothing was stored: the body never arrived whole.
            response["status"] = CLIENT_CLOSED_REQUEST
            log.info("request.client_disconnected", path=scope["path"])
        except Exception:
            log.exception("request.failed", method=scope["method"], path=scope["path"])
            if not response["started"]:
                body = error_body(
                    request_id, "internal_server_error", INTERNAL_ERROR_DETAIL
                )
                await JSONResponse(body, status_code=500)(
                    scope, receive, send_with_headers
                )
        finally:
            duration_ms = (time.perf_counter() - started_at) * 1000
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=response["status"],
                duration_ms=round(duration_ms, 2),
                client_ip=client_ip(scope),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.limiter.check(scope, "ip", client_ip(scope))
            _check_content_length(scope, self.max_body_bytes)
            _check_no_nul(scope)
        except AppError as exc:
            body = error_body(scope["state"]["request_id"], exc.code, exc.detail)
            await JSONResponse(body, exc.status_code, headers=exc.headers)(
                scope, receive, send
            )
            return

        await self.app(scope, _capped_receive(receive, self.max_body_bytes), send)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _REQUEST_ID_PATTERN.match(candidate):
                return candidate
    return str(uuid.uuid4())


def _strip_trailing_slash(scope: Scope) -> None:
    # Routes under /v1 are served with or without a trailing slash, never
    # redirected: newer clients do not follow redirects.
    path: str = scope["path"]
    if path.startswith("/v1/") and len(path) > 4 and path.endswith("/"):
        scope["path"] = path.rstrip("/")
        scope["raw_path"] = scope["path"].encode()


def _add_headers(message: Message, request_id: str, scope: Scope) -> None:
    headers = MutableHeaders(scope=message)
    headers["X-Request-ID"] = request_id
    for name, value in rate_limit_headers(scope.get("state", {}).get(STATE_KEY, [])):
        headers[name.decode()] = value.decode()


def _check_no_nul(scope: Scope) -> None:
    """Raise 400 for a NUL in the path or query, which PostgreSQL cannot store."""
    query: bytes = scope.get("query_string", b"")
    if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
        raise BadRequest(
            "The path or query contains a NUL character (%00).",
            code="invalid_request",
        )


def _check_content_length(scope: Scope, max_body_bytes: int) -> None:
    for name, value in scope["headers"]:
        if (
            name == b"content-length"
            and value.isdigit()
            and int(value) > max_body_bytes
        ):
            raise PayloadTooLarge(
                f"The request body is {int(value)} bytes;"
                f" the maximum is {max_body_bytes}."
            )


def _capped_receive(receive: Receive, max_body_bytes: int) -> Receive:
    """Wrap ``receive``: a body over the cap fails with 413, a stalled one with 408.

    Both are HTTPExceptions because FastAPI turns any other error raised while
    it reads the body into a 400.
    """
    received = 0
    body_done = False

    async def capped() -> Message:
        nonlocal received, body_done
        if body_done:
            return await receive()
        try:
            async with asyncio.timeout(BODY_IDLE_TIMEOUT_S):
                message = await receive()
        except TimeoutError:
            log.warning("request.body_timed_out", received_bytes=received)
            raise HTTPException(
                408, f"No request body data arrived for {BODY_IDLE_TIMEOUT_S:.0f} s."
            ) from None

        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            body_done = not message.get("more_body", False)
            if received > max_body_bytes:
                raise HTTPException(
                    413,
                    f"The request body exceeds the maximum of {max_body_bytes} bytes.",
                )
        return message

    return capped
