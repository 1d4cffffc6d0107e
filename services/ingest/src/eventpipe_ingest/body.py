"""Request bodies: which format a Content-Type means, and gzip decompression within the size limit."""

from __future__ import annotations

import zlib

from eventpipe_common.errors import EventpipeError

FORMATS: dict[str, str] = {
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/x-jsonlines": "ndjson",
    "application/jsonlines": "ndjson",
    "text/csv": "csv",
    "application/csv": "csv",
}


class UnsupportedMediaTypeError(EventpipeError):
    code = "unsupported_media_type"


class BodyTooLargeError(EventpipeError):
    code = "payload_too_large"


class BadBodyError(EventpipeError):
    code = "bad_request"


def format_for(content_type: str | None) -> str:
    """The core's format name for a Content-Type header (parameters such as charset are ignored)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        return FORMATS[media_type]
    except KeyError:
        raise UnsupportedMediaTypeError(
            f"Content-Type {media_type or '(none)'!r} is not supported; use one of {sorted(FORMATS)}",
            content_type=media_type) from None


def decode_content(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding (identity or gzip), refusing output over `limit` bytes (no zip bombs)."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    if not codings or codings == ["identity"]:
        return body
    if codings not in (["gzip"], ["x-gzip"]):
        raise UnsupportedMediaTypeError(f"Content-Encoding {encoding!r} is not supported; use gzip or identity",
                                   content_encoding=encoding)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadBodyError(f"the body is not valid gzip: {exc}") from exc
    if len(out) > limit:
        raise BodyTooLargeError(f"the decompressed body is over the limit of {limit} bytes", limit=limit)
    if not inflater.eof:
        raise BadBodyError("the gzip body is truncated")
    return out
