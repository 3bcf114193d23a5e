"""Read a JSON request body with a size cap, gzip and deflate included.

Parsing is lenient where one bad value must not sink a whole batch: numbers
that JSON cannot store (NaN, Infinity, 1e400, integers of more than 4,300
digits) are read as ``Unstorable`` markers, so the caller can reject the one
event that contains them and keep the rest.
"""

import json
import zlib
from typing import Any

import orjson
from fastapi import Request

from trw_platform.core.errors import (
    INVALID_JSON_DETAIL,
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)

SUPPORTED_ENCODINGS = ("identity", "gzip", "deflate")
# orjson reads integers beyond 64 bits as floats, losing digits, so a body
# with a run of 20 or more digits goes to the standard parser. Mapping every
# digit to "0" first turns the search for such a run into a substring search,
# several times faster than a regular expression.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 20
# Clients send one gzip member; concatenated files are allowed up to this many.
MAX_GZIP_MEMBERS = 64
_MAX_INT_DIGITS = 4300


class Unstorable:
    """A JSON number that has no exact stored form; its text is kept."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Unstorable({self.text[:20]!r})"


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
    return parse_json(raw)


def parse_json(raw: bytes) -> Any:
    """Parse JSON, with ``Unstorable`` markers for numbers it cannot keep."""
    if _LONG_NUMBER not in raw.translate(_DIGITS_TO_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the standard parser below separates a bad number from bad JSON
    try:
        return json.loads(
            raw,
            parse_constant=Unstorable,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"{INVALID_JSON_DETAIL}: {exc}", code="invalid_json") from exc


def _parse_float(text: str) -> float | Unstorable:
    number = float(text)
    return number if abs(number) != float("inf") else Unstorable(text)


def _parse_int(text: str) -> int | Unstorable:
    return int(text) if len(text) <= _MAX_INT_DIGITS else Unstorable(text)


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
    """Decode every gzip member (or one deflate stream), capped at ``max_bytes``.

    Raises 400 past MAX_GZIP_MEMBERS members: zlib copies the rest of the
    input after each member, so the work grows with the square of their number.
    """
    output = bytearray()
    remaining = raw
    for _member in range(MAX_GZIP_MEMBERS):
        # wbits 31 is gzip; 15 is the zlib format that HTTP calls deflate.
        decompressor = zlib.decompressobj(31 if encoding == "gzip" else 15)
        try:
            output += decompressor.decompress(remaining, max_bytes + 1 - len(output))
        except zlib.error as exc:
            raise _invalid_encoding(encoding) from exc
        if len(output) > max_bytes or decompressor.unconsumed_tail:
            raise PayloadTooLarge(
                f"The decoded request body exceeds the maximum of {max_bytes} bytes."
            )
        if not decompressor.eof:
            raise _invalid_encoding(encoding)

        remaining = decompressor.unused_data
        if not remaining:
            return bytes(output)
        if encoding != "gzip":
            raise _invalid_encoding(encoding)
    raise BadRequest(
        f"The gzip body has more than {MAX_GZIP_MEMBERS} members.",
        code="invalid_encoding",
    )


def _invalid_encoding(encoding: str) -> BadRequest:
    return BadRequest(
        f"The request body is not complete, valid {encoding} data.",
        code="invalid_encoding",
    )
