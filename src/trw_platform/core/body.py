"""Read a JSON request body with a size cap, gzip and deflate included."""

import json
import re
import zlib
from typing import Any

import orjson
from fastapi import Request

from trw_platform.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

SUPPORTED_ENCODINGS = ("identity", "gzip", "deflate")
_LONG_NUMBER = re.compile(rb"\d{20}")


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


async def read_json_body(request: Request, *, max_bytes: int) -> Any:
    """Parse the body as JSON; raises 415, 413 or 400 envelope errors."""
    if not _is_json(request.headers.get("content-type", "")):
        raise UnsupportedMediaType(
            "The request body must be JSON: send 'Content-Type: application/json'."
        )

    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in SUPPORTED_ENCODINGS:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported;"
            " use gzip, deflate or none.",
        )

    raw = await _read_capped(request, max_bytes)
    if encoding != "identity":
        raw = _decompress(raw, encoding, max_bytes)
    return _parse(raw)


def _parse(raw: bytes) -> Any:
    # orjson reads integers beyond 64 bits as floats, losing digits, so a body
    # with a run of 20 or more digits goes to the slower standard parser.
    try:
        if _LONG_NUMBER.search(raw) is None:
            return orjson.loads(raw)
        return json.loads(raw)
    except (ValueError, RecursionError, orjson.JSONDecodeError) as exc:
        raise BadRequest(
            f"The request body is not valid JSON: {exc}", code="invalid_json"
        ) from exc


async def _read_capped(request: Request, max_bytes: int) -> bytes:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(
                f"The request body exceeds the maximum of {max_bytes} bytes."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _decompress(raw: bytes, encoding: str, max_bytes: int) -> bytes:
    # wbits 47 accepts a gzip or zlib header; 15 is the zlib format that HTTP
    # calls deflate.
    decompressor = zlib.decompressobj(47 if encoding == "gzip" else 15)
    try:
        data = decompressor.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        raise BadRequest(
            f"The request body is not valid {encoding} data.", code="invalid_encoding"
        ) from exc
    if len(data) > max_bytes or decompressor.unconsumed_tail:
        raise PayloadTooLarge(
            f"The decoded request body exceeds the maximum of {max_bytes} bytes."
        )
    return data
