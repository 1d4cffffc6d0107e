"""A small HTTP/1.1 client for the one request ingest makes: a POST of a known body to one endpoint.

aiohttp's generic request machinery (multidicts, payload registry, streams, timers, a task per write) cost about
a tenth of an ingest request's CPU in benchmark W2, more than the SigV4 signing and the PutRecords body together.
This client does only what a PutRecords call needs: keep-alive connections to one host and port (TLS for
https), one request at a time per connection, the request head and the body written together without joining
them into one buffer, and the answer parsed by httptools (llhttp, the parser uvicorn uses) and read whole.

It honours what botocore honours for the same endpoint: `HTTPS_PROXY` (a CONNECT tunnel, TLS inside it) and
`HTTP_PROXY` (absolute-form requests) unless `NO_PROXY` names the host, credentials in the proxy URL
(Proxy-Authorization: Basic), and `AWS_CA_BUNDLE` as the CAs to trust for https.

Every failure is an `HttpError`: the connection cannot be opened, closes before the answer, the answer does not
parse, is larger than `max_answer_bytes`, is informational (1xx: ingest never sends `Expect`, so a 1xx is a
server out of step) or comes when no request is waiting (the connection is then closed, never reused), or no
answer comes within the timeout. A connection that failed or was cancelled mid-request is closed, never reused;
an idle one is closed after `idle_timeout` seconds (servers and load balancers drop idle connections on their
own schedule, and a request written into a connection the server is closing would fail). At most
`max_connections` requests are out at once; more wait for a connection.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import urllib.request
from typing import NamedTuple, cast
from urllib.parse import unquote, urlsplit

import httptools


class HttpError(Exception):
    """The request got no complete HTTP answer (connection refused, closed or reset, timeout, bad answer)."""


class Answer(NamedTuple):
    status: int
    body: bytes


class Proxy(NamedTuple):
    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization header's value, from credentials in the proxy URL


def proxy_for(url: str) -> Proxy | None:
    """The proxy the environment names for `url` (HTTPS_PROXY / HTTP_PROXY, upper or lower case), unless
    NO_PROXY names its host; None for a direct connection. Read as urllib (and so botocore) reads them."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme)
    # proxy_bypass_environment is public in urllib but missing from typeshed's stubs.
    if not proxy or urllib.request.proxy_bypass_environment(parts.netloc, proxies):  # type: ignore[attr-defined]
        return None
    if "://" not in proxy:
        proxy = f"http://{proxy}"
    proxy_parts = urlsplit(proxy)
    if proxy_parts.scheme != "http" or not proxy_parts.hostname:
        raise ValueError(f"only http:// proxies are supported, not {proxy_parts.scheme}:// ({parts.scheme} proxy)")
    authorization = None
    if proxy_parts.username is not None:
        user_pass = f"{unquote(proxy_parts.username)}:{unquote(proxy_parts.password or '')}"
        authorization = "Basic " + base64.b64encode(user_pass.encode("utf-8")).decode("ascii")
    return Proxy(proxy_parts.hostname, proxy_parts.port or 80, authorization)


def default_ssl_context() -> ssl.SSLContext:
    """The system's CAs, or only those of AWS_CA_BUNDLE when it is set (as botocore)."""
    return ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)


class _Tunnel(asyncio.Protocol):
    """The proxy's answer to CONNECT, before TLS starts on the same connection."""

    def __init__(self) -> None:
        self.head: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._data = b""

    def data_received(self, data: bytes) -> None:
        self._data += data
        if b"\r\n\r\n" in self._data and not self.head.done():
            self.head.set_result(self._data)
        elif len(self._data) > 64 * 1024 and not self.head.done():
            self.head.set_exception(HttpError("the proxy's answer to CONNECT is over 64 KiB"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(HttpError(f"the proxy closed the connection ({exc or 'closed'})"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `request` sends a request and waits for its answer."""

    def __init__(self, max_answer_bytes: int = 4 * 1024 * 1024) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._chunks: list[bytes] = []
        self._size = 0
        self._max_answer_bytes = max_answer_bytes
        self._answer: asyncio.Future[Answer] | None = None
        self.reusable = True
        self.idle_timer: asyncio.TimerHandle | None = None

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

    def on_message_begin(self) -> None:
        if self._answer is None or self._answer.done():
            self._fail(HttpError("an answer came when no request was waiting for one"))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self._fail(HttpError(f"an informational answer ({status}); this client never asks for one"))

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._max_answer_bytes:
            self._fail(HttpError(f"the answer is over the limit of {self._max_answer_bytes} bytes"))
            return
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self.reusable and self._parser.should_keep_alive()
        answer = Answer(self._parser.get_status_code(), b"".join(self._chunks))
        self._chunks = []
        self._size = 0
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
        self._chunks = []
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.close()


class HttpClient:
    """POSTs to `url` (http or https) over a pool of keep-alive connections, through the environment's proxy."""

    def __init__(self, url: str, *, max_connections: int = 10, connect_timeout: float = 5.0,
                 timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None,
                 max_answer_bytes: int = 4 * 1024 * 1024, idle_timeout: float = 30.0) -> None:
        """`max_answer_bytes`: a PutRecords answer of 500 records is ~60 KB, so the default is ample."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = (ssl_context or default_ssl_context()) if parts.scheme == "https" else None
        default_port = parts.port is None or parts.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        host_header = host if default_port else f"{host}:{self._port}"
        self._proxy = proxy_for(url)
        path = parts.path or "/"
        if self._proxy is not None and self._ssl is None:
            # Plain HTTP through a proxy: the request names the whole URL and carries the proxy's credentials.
            auth = f"Proxy-Authorization: {self._proxy.authorization}\r\n" if self._proxy.authorization else ""
            self._head_start = f"POST http://{host_header}{path} HTTP/1.1\r\nHost: {host_header}\r\n{auth}"
        else:
            self._head_start = f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\n"
        self._connect_target = f"{host}:{self._port}"
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._max_answer_bytes = max_answer_bytes
        self._idle_timeout = idle_timeout
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
                self._park(connection)
            else:
                connection.close()
            return answer

    def _park(self, connection: _Connection) -> None:
        """Keep an idle connection for the next request, closing it when no request took it in time."""
        self._idle.append(connection)
        connection.idle_timer = asyncio.get_running_loop().call_later(self._idle_timeout, self._expire, connection)

    def _expire(self, connection: _Connection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)
        connection.close()

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
            if connection.idle_timer is not None:
                connection.idle_timer.cancel()
                connection.idle_timer = None
            if connection.reusable:  # closed by the server while idle: connection_lost marked it
                return connection
        if self._closed:
            raise HttpError("the HTTP client is closed")
        where = f"{self._proxy.host}:{self._proxy.port} (proxy)" if self._proxy else f"{self._host}:{self._port}"
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await self._open()
        except TimeoutError as exc:
            raise HttpError(f"cannot connect to {where} within {self._connect_timeout} s") from exc
        except OSError as exc:  # refused, unreachable, TLS handshake (ssl.SSLError is an OSError)
            raise HttpError(f"cannot connect to {where}: {exc}") from exc

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        max_answer_bytes = self._max_answer_bytes
        if self._proxy is None:
            _, connection = await loop.create_connection(
                lambda: _Connection(max_answer_bytes), self._host, self._port, ssl=self._ssl,
                server_hostname=self._host if self._ssl else None)
            return connection
        if self._ssl is None:  # plain HTTP: requests go to the proxy in absolute form
            _, connection = await loop.create_connection(
                lambda: _Connection(max_answer_bytes), self._proxy.host, self._proxy.port)
            return connection
        return await self._tunnel(loop, self._proxy, self._ssl)

    async def _tunnel(self, loop: asyncio.AbstractEventLoop, proxy: Proxy, context: ssl.SSLContext) -> _Connection:
        """HTTPS through the proxy: CONNECT host:port, then TLS with the endpoint inside the tunnel."""
        raw, tunnel = await loop.create_connection(_Tunnel, proxy.host, proxy.port)
        try:
            auth = f"Proxy-Authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
            raw.write(f"CONNECT {self._connect_target} HTTP/1.1\r\nHost: {self._connect_target}\r\n{auth}\r\n"
                      .encode("latin-1"))
            head = await tunnel.head
            status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            fields = status_line.split(" ", 2)
            if len(fields) < 2 or not fields[0].startswith("HTTP/1.") or fields[1] != "200":
                raise HttpError(f"the proxy refused CONNECT {self._connect_target}: {status_line[:200]!r}")
            if not head.endswith(b"\r\n\r\n"):
                raise HttpError("the proxy sent data after its answer to CONNECT, before TLS")
            connection = _Connection(self._max_answer_bytes)
            secure = await loop.start_tls(raw, connection, context, server_hostname=self._host)
        except BaseException:
            raw.close()
            raise
        if secure is None:
            raise HttpError("the TLS handshake through the proxy did not complete")
        connection.connection_made(secure)
        return connection

    async def aclose(self) -> None:
        """Close the idle connections; the ones in use close when their request ends."""
        self._closed = True
        while self._idle:
            connection = self._idle.pop()
            if connection.idle_timer is not None:
                connection.idle_timer.cancel()
            connection.close()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
