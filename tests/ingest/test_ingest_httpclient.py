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
