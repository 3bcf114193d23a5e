"""Application errors and the handlers that render the error envelope.

Every error body is ``{"error": code, "detail": ..., "request_id": ...}``.

    AppError
    ├── BadRequest            400 bad_request
    ├── Unauthorized          401 unauthorized (sets WWW-Authenticate)
    ├── Forbidden             403 forbidden
    ├── NotFound              404 not_found
    ├── Conflict              409 conflict
    ├── PayloadTooLarge       413 payload_too_large
    ├── UnsupportedMediaType  415 unsupported_media_type
    └── RateLimited           429 rate_limited (sets Retry-After)
"""

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)

INTERNAL_ERROR_DETAIL = "An unexpected error occurred."
INVALID_JSON_DETAIL = "The request body is not valid JSON"
# The detail of the HTTPException FastAPI raises when json.loads fails.
FASTAPI_PARSE_ERROR = "There was an error parsing the body"
# Validation error types for a body that reached pydantic as raw bytes.
NOT_AN_OBJECT = frozenset({"model_attributes_type", "dict_type", "model_type"})

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_server_error",
    503: "service_unavailable",
}


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    detail = "The request is invalid."

    def __init__(
        self,
        detail: Any = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.detail = self.detail if detail is None else detail
        self.code = code or self.code
        self.headers = headers or {}
        super().__init__(str(self.detail))


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    detail = "Invalid or expired token"

    def __init__(self, detail: Any = None, *, code: str | None = None) -> None:
        super().__init__(
            detail, code=code, headers={"WWW-Authenticate": 'Bearer realm="trw"'}
        )


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    detail = "The credential is not allowed to do this."


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    detail = "Not found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    detail = "The request conflicts with the current state."


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    detail = "The request body is too large."


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"
    detail = "The request body must be application/json."


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    detail = "Too many requests; retry after the number of seconds in Retry-After."

    def __init__(self, retry_after: int, detail: Any = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class ErrorRead(BaseModel):
    """The error envelope every error response uses."""

    error: str
    detail: Any
    request_id: str | None


# For the ``responses=`` of routers that need an API key.
API_KEY_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorRead, "description": "Missing, invalid or revoked credential"},
    403: {"model": ErrorRead, "description": "The key lacks the scope the route needs"},
    422: {"model": ErrorRead, "description": "Invalid parameters or body"},
    429: {"model": ErrorRead, "description": "Rate limit exceeded; see Retry-After"},
}


def error_body(request_id: str | None, code: str, detail: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, "request_id": request_id}


def error_response(
    request: Request,
    status_code: int,
    code: str,
    detail: Any,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    return JSONResponse(
        error_body(request_id, code, detail), status_code=status_code, headers=headers
    )


async def handle_app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(request, exc.status_code, exc.code, exc.detail, exc.headers)


def _is_json_media_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _unparsed_body(request: Request, errors: Sequence[Any]) -> bool:
    """Return whether the body was left unparsed for its content type."""
    content_type = request.headers.get("content-type", "")
    if _is_json_media_type(content_type):
        return False
    return any(
        tuple(item["loc"]) == ("body",) and item["type"] in NOT_AN_OBJECT
        for item in errors
    )


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """Render 400 for a body that is not JSON, 422 for JSON that fails the schema.

    A body that does not parse gets the same response as on the routes that
    read their body themselves: 400 ``invalid_json``. A body sent with
    another content type is not parsed at all, which gets 415.
    """
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if errors and all(item["type"] == "json_invalid" for item in errors):
        reason = errors[0].get("ctx", {}).get("error", "")
        detail = f"{INVALID_JSON_DETAIL}: {reason}" if reason else INVALID_JSON_DETAIL
        return error_response(request, 400, "invalid_json", detail)
    if _unparsed_body(request, errors):
        content_type = request.headers.get("content-type", "none")
        detail = (
            "Send the body as JSON with 'Content-Type: application/json'"
            f" (got {content_type[:100]!r})."
        )
        return error_response(request, 415, "unsupported_media_type", detail)

    detail = [
        {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
        for item in errors
    ]
    return error_response(request, 422, "validation_error", detail)


async def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    detail = exc.detail
    if exc.status_code == 400 and detail == FASTAPI_PARSE_ERROR:
        # FastAPI raises this when json.loads rejects a body before pydantic
        # validates it: bytes that are not UTF-8, or nesting past the
        # recursion limit.
        code = "invalid_json"
        detail = f"{INVALID_JSON_DETAIL}: not UTF-8, or nested too deeply."
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route matches {request.method} {request.url.path}"
    headers = dict(exc.headers) if exc.headers else None
    return error_response(request, exc.status_code, code, detail, headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, handle_app_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
