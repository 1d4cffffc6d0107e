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


GZIP_MAGIC = b"\x1f\x8b"
MAX_GZIP_MEMBERS = 1024  # `cat a.gz b.gz ...` of many parts is fine; half a million empty members is not a body


def decode_content(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding (identity or gzip), refusing output over `limit` bytes (no zip bombs).

    A gzip body is read whole: every member of a multi-member body (RFC 1952, `cat a.gz b.gz`) is decoded, and
    anything after the last member that is not one (trailing garbage) refuses the body, so no request is ever
    answered for its first member only."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    if not codings or codings == ["identity"]:
        return body
    if codings not in (["gzip"], ["x-gzip"]):
        raise UnsupportedMediaTypeError(f"Content-Encoding {encoding!r} is not supported; use gzip or identity",
                                   content_encoding=encoding)
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        if len(parts) == MAX_GZIP_MEMBERS:
            raise BadBodyError(f"the gzip body has more than {MAX_GZIP_MEMBERS} members",
                               limit=MAX_GZIP_MEMBERS)
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            raise BadBodyError(f"the body is not valid gzip (member {len(parts) + 1}): {exc}") from exc
        size += len(out)
        if size > limit:
            raise BodyTooLargeError(f"the decompressed body is over the limit of {limit} bytes", limit=limit)
        if not inflater.eof:
            raise BadBodyError(f"the gzip body is truncated (member {len(parts) + 1})")
        parts.append(out)
        rest = inflater.unused_data
        if not rest:
            return parts[0] if len(parts) == 1 else b"".join(parts)
        if not rest.startswith(GZIP_MAGIC):
            raise BadBodyError(f"the gzip body has {len(rest)} bytes of trailing data after member {len(parts)} "
                               "that are not a gzip member")
