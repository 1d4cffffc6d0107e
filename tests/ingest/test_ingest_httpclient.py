"""The PutRecords HTTP client (eventpipe_ingest.httpclient) against real servers on 127.0.0.1: uvicorn over HTTP and
HTTPS (a test CA from trustme), and raw TCP servers for the answers a web server would not give."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from eventpipe_ingest.httpclient import Answer, HttpClient, HttpError

from tests.helpers.ingest_helpers import serve
from tests.helpers.servers import free_port


async def echo(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
               send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Answers what it got: the client's port (which connection), the body's size and SHA-256, the headers.
    /slow waits for X-Sleep seconds first; /close answers with Connection: close."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    if scope["path"] == "/slow":
        await asyncio.sleep(float(headers["x-sleep"]))
    answer = json.dumps({"port": scope["client"][1], "size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                         "headers": headers}).encode()
    extra = [(b"connection", b"close")] if scope["path"] == "/close" else []
    await send({"type": "http.response.start", "status": 201 if scope["path"] == "/created" else 200,
                "headers": [(b"content-type", b"application/json"), *extra]})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with serve(echo, lifespan="off") as url:
        yield url


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_url(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    with serve(echo, lifespan="off", ssl_certfile=str(folder / "cert.pem"), ssl_keyfile=str(folder / "key.pem")) as url:
        yield url


def run(scenario: Awaitable[Any]) -> Any:
    return asyncio.run(scenario)  # type: ignore[arg-type]


def decoded(answer: Answer) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(answer.body)
    return result


def test_posts_the_body_and_headers_and_reuses_the_connection(http_url: str) -> None:
    body = bytes(range(256)) * 2000  # 512 KB: more than one socket write

    async def scenario() -> list[Answer]:
        async with HttpClient(f"{http_url}/put") as client:
            return [await client.post({"X-Amz-Target": "Kinesis_20131202.PutRecords"}, body) for _ in range(3)]

    answers = run(scenario())
    assert [a.status for a in answers] == [200, 200, 200]
    seen = [decoded(a) for a in answers]
    assert all(s["size"] == len(body) and s["sha256"] == hashlib.sha256(body).hexdigest() for s in seen)
    assert seen[0]["headers"]["x-amz-target"] == "Kinesis_20131202.PutRecords"
    assert seen[0]["headers"]["host"] == http_url.removeprefix("http://")
    assert len({s["port"] for s in seen}) == 1, "one keep-alive connection for requests one after the other"


def test_status_other_than_200_is_an_answer_not_an_error(http_url: str) -> None:
    async def scenario() -> Answer:
        async with HttpClient(f"{http_url}/created") as client:
            return await client.post({}, b"x")

    assert run(scenario()).status == 201


def test_a_connection_the_server_closes_is_not_reused(http_url: str) -> None:
    async def scenario() -> list[Answer]:
        async with HttpClient(f"{http_url}/close") as client:
            return [await client.post({}, b"x") for _ in range(2)]

    ports = [decoded(a)["port"] for a in run(scenario())]
    assert ports[0] != ports[1]


def test_concurrent_requests_wait_for_a_connection_beyond_the_limit(http_url: str) -> None:
    async def scenario() -> list[Answer]:
        async with HttpClient(f"{http_url}/slow", max_connections=2) as client:
            return list(await asyncio.gather(*(client.post({"X-Sleep": "0.05"}, b"x") for _ in range(6))))

    ports = [decoded(a)["port"] for a in run(scenario())]
    assert len(set(ports)) == 2


def test_no_answer_within_the_timeout_fails_and_the_connection_is_dropped(http_url: str) -> None:
    async def scenario() -> tuple[str, Answer]:
        async with HttpClient(f"{http_url}/slow", timeout=0.2) as client:
            with pytest.raises(HttpError, match="no answer within 0.2 s") as info:
                await client.post({"X-Sleep": "1"}, b"x")
            return str(info.value), await client.post({"X-Sleep": "0"}, b"x")

    _, after = run(scenario())
    assert after.status == 200


def test_a_cancelled_request_leaves_no_connection_out_of_step(http_url: str) -> None:
    """Cancelled while waiting (the caller's deadline): its answer must never be read as the next request's."""
    async def scenario() -> dict[str, Any]:
        async with HttpClient(f"{http_url}/slow") as client:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await client.post({"X-Sleep": "0.3"}, b"first")
            await asyncio.sleep(0.4)  # the first answer has come by now, on the closed connection
            return decoded(await client.post({"X-Sleep": "0"}, b"second"))

    assert run(scenario())["size"] == len(b"second")


def test_https_with_a_trusted_ca(https_url: str, ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)

    async def scenario() -> Answer:
        async with HttpClient(f"{https_url}/put", ssl_context=context) as client:
            return await client.post({}, b"over tls")

    assert decoded(run(scenario()))["size"] == len(b"over tls")


def test_https_refuses_an_untrusted_certificate(https_url: str) -> None:
    async def scenario() -> None:
        async with HttpClient(f"{https_url}/put") as client:
            await client.post({}, b"x")

    with pytest.raises(HttpError, match="CERTIFICATE_VERIFY_FAILED"):
        run(scenario())


def test_connection_refused() -> None:
    async def scenario() -> None:
        async with HttpClient(f"http://127.0.0.1:{free_port()}/") as client:
            await client.post({}, b"x")

    with pytest.raises(HttpError, match="cannot connect to 127.0.0.1"):
        run(scenario())


def raw_server(answer: bytes) -> Callable[[], Awaitable[tuple[asyncio.Server, int]]]:
    """A TCP server that reads a request's head and answers `answer` (bytes a web server would not send), then
    closes the connection."""
    async def start() -> tuple[asyncio.Server, int]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return server, server.sockets[0].getsockname()[1]

    return start


@pytest.mark.parametrize(("answer", "message"), [
    (b"not http at all\r\n\r\n", "not valid HTTP"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "closed before the answer"),
    (b"", "closed before the answer"),
])
def test_broken_answers_are_errors(answer: bytes, message: str) -> None:
    async def scenario() -> None:
        server, port = await raw_server(answer)()
        async with server, HttpClient(f"http://127.0.0.1:{port}/") as client:
            await client.post({}, b"x")

    with pytest.raises(HttpError, match=message):
        run(scenario())


def test_header_values_with_line_breaks_are_refused(http_url: str) -> None:
    async def scenario() -> None:
        async with HttpClient(http_url) as client:
            await client.post({"X-Amz-Security-Token": "abc\r\nX-Injected: 1"}, b"x")

    with pytest.raises(ValueError, match="X-Amz-Security-Token holds a line break"):
        run(scenario())


def test_urls_it_cannot_post_to(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an http"):
        HttpClient(f"file://{tmp_path}")


# The faults below (a proxy in the path, a 1xx, an answer nobody asked for, an oversized answer, a server that
# keeps an idle connection open) cannot be caused with kinesalite or uvicorn, so small servers on raw sockets
# written here stand in for them; everything else is real (TCP, TLS, the client's code).

class Proxy:
    """An HTTP proxy on 127.0.0.1: CONNECT tunnels and absolute-form requests, relayed to the target. It
    records each request line, and refuses (407) a request whose Proxy-Authorization is not `expected_auth`."""

    def __init__(self, expected_auth: str | None = None) -> None:
        self.seen: list[str] = []
        self.expected_auth = expected_auth
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Proxy:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.seen.append(lines[0])
        auth = next((line.split(":", 1)[1].strip() for line in lines if line.lower().startswith(
            "proxy-authorization:")), None)
        if self.expected_auth is not None and auth != self.expected_auth:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        method, target, _ = lines[0].split(" ")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:  # absolute form: http://host:port/path
            host, port = target.split("/")[2].rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            up_writer.write(head)
        await asyncio.gather(relay(reader, up_writer), relay(up_reader, writer))

    async def __aenter__(self) -> Proxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass  # the other side closed mid-relay: the relay ends, as a proxy's would
    finally:
        writer.close()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def trusted_ca_bundle(ca: trustme.CA, folder: Path) -> str:
    path = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_https_through_the_proxy_of_https_proxy(https_url: str, ca: trustme.CA, no_proxy_env: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """HTTPS_PROXY with credentials: a CONNECT tunnel to the endpoint, TLS inside it (trusting AWS_CA_BUNDLE)."""
    no_proxy_env.setenv("AWS_CA_BUNDLE", trusted_ca_bundle(ca, tmp_path))
    target = https_url.removeprefix("https://")

    async def scenario() -> tuple[list[str], list[Answer]]:
        async with Proxy(expected_auth="Basic dXNlcjpwQHNz") as proxy:  # user:p@ss
            no_proxy_env.setenv("HTTPS_PROXY", f"http://user:p%40ss@127.0.0.1:{proxy.port}")
            async with HttpClient(f"{https_url}/put") as client:
                answers = [await client.post({}, b"through the tunnel") for _ in range(2)]
            return proxy.seen, answers

    seen, answers = run(scenario())
    assert seen == [f"CONNECT {target} HTTP/1.1"], "one tunnel, reused for the second request"
    assert [decoded(a)["size"] for a in answers] == [len(b"through the tunnel")] * 2
    assert decoded(answers[0])["headers"]["host"] == target


def test_http_through_the_proxy_of_http_proxy(http_url: str, no_proxy_env: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[list[str], Answer]:
        async with Proxy() as proxy:
            no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
            async with HttpClient(f"{http_url}/put") as client:
                return proxy.seen, await client.post({}, b"plain")

    seen, answer = run(scenario())
    assert seen == [f"POST {http_url}/put HTTP/1.1"]
    assert decoded(answer)["size"] == len(b"plain")


def test_no_proxy_names_hosts_reached_directly(http_url: str, no_proxy_env: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[list[str], Answer]:
        async with Proxy() as proxy:
            no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
            no_proxy_env.setenv("NO_PROXY", "example.com,127.0.0.1")
            async with HttpClient(f"{http_url}/put") as client:
                return proxy.seen, await client.post({}, b"direct")

    seen, answer = run(scenario())
    assert seen == []
    assert decoded(answer)["size"] == len(b"direct")


def test_a_proxy_that_refuses_the_tunnel_is_an_error(https_url: str, no_proxy_env: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with Proxy(expected_auth="Basic c29tZW9uZTplbHNl") as proxy:
            no_proxy_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
            async with HttpClient(f"{https_url}/put") as client:
                await client.post({}, b"x")

    with pytest.raises(HttpError, match="proxy refused CONNECT .* 407"):
        run(scenario())


def test_aws_ca_bundle_is_the_trust_for_https(https_url: str, ca: trustme.CA, no_proxy_env: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    async def scenario() -> Answer:
        async with HttpClient(f"{https_url}/put") as client:
            return await client.post({}, b"trusted by the bundle")

    no_proxy_env.setenv("AWS_CA_BUNDLE", trusted_ca_bundle(ca, tmp_path))
    assert decoded(run(scenario()))["size"] == len(b"trusted by the bundle")
    other = trustme.CA()
    no_proxy_env.setenv("AWS_CA_BUNDLE", trusted_ca_bundle(other, tmp_path / ".."))
    with pytest.raises(HttpError, match="CERTIFICATE_VERIFY_FAILED"):
        run(scenario())


class KeepAliveServer:
    """Answers every request on a connection with `answer` (then `extra`, unasked, when given) and keeps the
    connection open; counts connections and notes when the client closes one."""

    def __init__(self, answer: bytes, extra: bytes = b"", extra_apart: bool = False) -> None:
        self.answer, self.extra, self.extra_apart = answer, extra, extra_apart
        self.connections = 0
        self.closed_by_client: asyncio.Event | None = None
        self.port = 0

    async def start(self) -> asyncio.Server:
        self.closed_by_client = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                if self.extra and not self.extra_apart:
                    writer.write(self.answer + self.extra)
                else:
                    writer.write(self.answer)
                    await writer.drain()
                    if self.extra:
                        await asyncio.sleep(0.05)  # the first answer has been read: the extra one comes unasked
                        writer.write(self.extra)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            assert self.closed_by_client is not None
            self.closed_by_client.set()
        finally:
            writer.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def post_twice_across_a_close(server: KeepAliveServer, idle_timeout: float = 30.0) -> list[Answer]:
    """Two posts on one client, the second after the client closed the first connection: a bounded wait for that
    close (the client never closes without the check under test)."""
    async with await server.start(), HttpClient(f"http://127.0.0.1:{server.port}/",
                                                 idle_timeout=idle_timeout) as client:  # the port once started
        first = await client.post({}, b"x")
        assert server.closed_by_client is not None
        await asyncio.wait_for(server.closed_by_client.wait(), 10)
        return [first, await client.post({}, b"x")]


def test_idle_connections_are_closed_after_the_idle_timeout() -> None:
    server = KeepAliveServer(OK)
    answers = run(post_twice_across_a_close(server, idle_timeout=0.2))
    assert [a.body for a in answers] == [b"ok", b"ok"]
    assert server.connections == 2


@pytest.mark.parametrize(("extra", "apart"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nthe start of an answer", True),
], ids=["whole, in the same packet", "its start, later, on the idle connection"])
def test_an_unsolicited_answer_closes_the_connection(extra: bytes, apart: bool) -> None:
    """An answer nobody asked for must never be read as (part of) the next request's answer."""
    server = KeepAliveServer(OK, extra=extra, extra_apart=apart)
    answers = run(post_twice_across_a_close(server))
    assert [a.body for a in answers] == [b"ok", b"ok"]
    assert server.connections == 2


@pytest.mark.parametrize("informational", [
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
])
def test_an_informational_answer_is_an_error(informational: bytes) -> None:
    async def scenario() -> None:
        server, port = await raw_server(informational + OK)()
        async with server, HttpClient(f"http://127.0.0.1:{port}/") as client:
            await client.post({}, b"x")

    with pytest.raises(HttpError, match="informational answer"):
        run(scenario())


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"400\r\n" + b"y" * 1024 + b"\r\n" * 1 +
    b"400\r\n" + b"y" * 1024 + b"\r\n0\r\n\r\n",
], ids=["content-length", "chunked"])
def test_an_answer_over_the_size_limit_is_an_error(answer: bytes) -> None:
    async def scenario() -> None:
        server, port = await raw_server(answer)()
        async with server, HttpClient(f"http://127.0.0.1:{port}/", max_answer_bytes=1500) as client:
            await client.post({}, b"x")

    with pytest.raises(HttpError, match="over the limit of 1500 bytes"):
        run(scenario())
