"""A small HTTP/1.1 client for the one request ingest makes: a POST of a known body to one endpoint.

aiohttp's generic request machinery (multidicts, payload registry, streams, timers, a task per write) cost about
a tenth of an ingest request's CPU in benchmark W2, more than the SigV4 signing and the PutRecords body together.
This client does only what a PutRecords call needs: keep-alive connections to one host and port (TLS for
https), one request at a time per connection, the request head and the body written together without joining
them into one buffer, and the answer parsed by httptools (llhttp, the parser uvicorn uses) and read whole.

Every failure is an `HttpError`: the connection cannot be opened, closes before the answer, the answer does not
parse, or no answer comes within the timeout. A connection that failed or was cancelled mid-request is closed,
never reused. At most `max_connections` requests are out at once; more wait for a connection.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import NamedTuple, cast
from urllib.parse import urlsplit

import httptools


class HttpError(Exception):
    """The request got no complete HTTP answer (connection refused, closed or reset, timeout, bad answer)."""


class Answer(NamedTuple):
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `request` sends a request and waits for its answer."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._chunks: list[bytes] = []
        self._answer: asyncio.Future[Answer] | None = None
        self.reusable = True

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"the answer is not valid HTTP: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(HttpError(f"the connection closed before the answer ({exc or 'closed by the server'})"))

    # httptools callbacks

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self.reusable and self._parser.should_keep_alive()
        answer = Answer(self._parser.get_status_code(), b"".join(self._chunks))
        self._chunks = []
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(answer)
        else:  # an answer nobody asked for: the connection is out of step
            self.close()

    # the client's side

    async def request(self, head: bytes, body: bytes, timeout: float) -> Answer:
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Answer] = loop.create_future()
        self._answer = answer
        timer = loop.call_later(timeout, self._time_out, timeout)
        try:
            self._transport.writelines((head, body))
            return await answer
        finally:
            timer.cancel()
            self._answer = None

    def _time_out(self, timeout: float) -> None:
        self._fail(HttpError(f"no answer within {timeout} s"))

    def _fail(self, exc: HttpError) -> None:
        self.reusable = False
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.close()


class HttpClient:
    """POSTs to `url` (http or https) over a pool of keep-alive connections."""

    def __init__(self, url: str, *, max_connections: int = 10, connect_timeout: float = 5.0,
                 timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        default_port = parts.port is None or parts.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        host_header = host if default_port else f"{host}:{self._port}"
        self._head_start = f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host_header}\r\n"
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._closed = False

    async def post(self, headers: dict[str, str], body: bytes) -> Answer:
        """Send the POST with these headers (Host and Content-Length are added) and return the whole answer."""
        head = self._head(headers, len(body))
        async with self._slots:
            connection = await self._connection()
            try:
                answer = await connection.request(head, body, self._timeout)
            except BaseException:
                connection.close()  # mid-request: the answer may still come and would be read as the next one
                raise
            if connection.reusable and not self._closed:
                self._idle.append(connection)
            else:
                connection.close()
            return answer

    def _head(self, headers: dict[str, str], length: int) -> bytes:
        lines = [self._head_start]
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"the HTTP header {name} holds a line break")
            lines.append(f"{name}: {value}\r\n")
        lines.append(f"Content-Length: {length}\r\n\r\n")
        return "".join(lines).encode("latin-1")

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable:  # closed by the server while idle: connection_lost marked it
                return connection
        if self._closed:
            raise HttpError("the HTTP client is closed")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(
                    _Connection, self._host, self._port, ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None)
        except TimeoutError as exc:
            raise HttpError(f"cannot connect to {self._host}:{self._port} within {self._connect_timeout} s") from exc
        except OSError as exc:  # refused, unreachable, TLS handshake (ssl.SSLError is an OSError)
            raise HttpError(f"cannot connect to {self._host}:{self._port}: {exc}") from exc
        return protocol

    async def aclose(self) -> None:
        """Close the idle connections; the ones in use close when their request ends."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
