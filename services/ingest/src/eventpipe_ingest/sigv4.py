"""AWS Signature Version 4 for one kind of request: a POST to a fixed endpoint with a body whose SHA-256 is known.

botocore's `SigV4Auth` signs any request through its generic AWSRequest machinery (URL parsing and normalising,
header copies, a SHA-256 of the body of its own), a visible share of an ingest request (docs/benchmarks.md, W2).
This signer does the same computation (AWS's "Create a signed AWS API request") for the only
request ingest signs, with the body hash the Rust core computed while building the body, and the signing key
cached per day. tests/ingest checks that its Authorization header equals botocore's for the same request.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Protocol
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"


class Credentials(Protocol):
    """botocore's (frozen) credentials."""

    access_key: str
    secret_key: str
    token: str | None


def host_of(url: str) -> str:
    """The Host header botocore signs: the URL's netloc without the scheme's default port."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port == default:
        host = parts.hostname or ""
        return f"[{host}]" if ":" in host else host
    return parts.netloc


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


class PostSigner:
    """Signs POSTs of `headers` (their values fixed, e.g. Content-Type and X-Amz-Target) to `url`."""

    def __init__(self, url: str, region: str, service: str, headers: dict[str, str]) -> None:
        self._region = region
        self._service = service
        self._path = quote(urlsplit(url).path or "/", safe="/~")
        self._fixed = {"host": host_of(url), **{name.lower(): " ".join(v.split()) for name, v in headers.items()}}
        self._headers = dict(headers)
        self._keys: tuple[str, str, bytes] | None = None  # (secret key, date) -> signing key

    def _signing_key(self, secret_key: str, date: str) -> bytes:
        if self._keys is None or self._keys[:2] != (secret_key, date):
            key = _hmac(("AWS4" + secret_key).encode("utf-8"), date)
            for part in (self._region, self._service, "aws4_request"):
                key = _hmac(key, part)
            self._keys = (secret_key, date, key)
        return self._keys[2]

    def headers(self, credentials: Credentials, body_sha256: str, amz_date: str | None = None) -> dict[str, str]:
        """The request's headers, X-Amz-Date, X-Amz-Security-Token (temporary credentials) and Authorization
        included. `amz_date` (YYYYMMDDTHHMMSSZ) defaults to now."""
        amz_date = amz_date or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        signed = {**self._fixed, "x-amz-date": amz_date}
        if credentials.token:
            signed["x-amz-security-token"] = credentials.token
        names = sorted(signed)
        signed_headers = ";".join(names)
        canonical = "\n".join(["POST", self._path, "", *(f"{n}:{signed[n]}" for n in names), "",
                               signed_headers, body_sha256])
        scope = f"{amz_date[:8]}/{self._region}/{self._service}/aws4_request"
        to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
        signature = hmac.new(self._signing_key(credentials.secret_key, amz_date[:8]), to_sign.encode("utf-8"),
                             hashlib.sha256).hexdigest()
        out = {**self._headers, "X-Amz-Date": amz_date,
               "Authorization": f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
                                f"SignedHeaders={signed_headers}, Signature={signature}"}
        if credentials.token:
            out["X-Amz-Security-Token"] = credentials.token
        return out
