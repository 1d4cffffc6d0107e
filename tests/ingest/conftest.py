"""Ingest fixtures: a real Kinesis stream on kinesalite, API keys on disk, the app served by uvicorn over HTTP.
The helpers they use are in tests/helpers/ingest_helpers.py."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from eventpipe_ingest.app import TransportWrapper, create_app
from eventpipe_ingest.auth import hash_key
from eventpipe_ingest.settings import IngestSettings

from tests.helpers.ingest_helpers import create_stream, serve


@pytest.fixture(scope="session")
def stream(kinesis_endpoint: str) -> str:
    return create_stream(kinesis_endpoint)


@pytest.fixture(scope="session")
def api_key() -> str:
    return "epk_" + secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def keys_file(tmp_path_factory: pytest.TempPathFactory, api_key: str) -> Path:
    path = tmp_path_factory.mktemp("keys") / "api-keys"
    path.write_text(f"# test keys\ntests:{hash_key(api_key)}\n\nother:{hash_key('another-key')}\n")
    return path


@pytest.fixture(scope="session")
def job_store_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('jobs') / 'jobs.db'}"


@pytest.fixture
def ingest_app(kinesis_endpoint: str, stream: str, keys_file: Path, job_store_dsn: str,
               api_key: str) -> Callable[..., Any]:
    """`with ingest_app(**settings) as client:` an httpx client (API key set) on a served app."""

    @contextmanager
    def make(wrap_transport: TransportWrapper | None = None, auth: bool = True,
             **overrides: Any) -> Iterator[httpx.Client]:
        values: dict[str, Any] = {
            "kinesis_endpoint_url": kinesis_endpoint, "stream_name": stream, "job_store_dsn": job_store_dsn,
            "ingest_api_keys_file": keys_file, "ingest_publish_deadline_seconds": 10.0,
        }
        values.update(overrides)
        settings = IngestSettings(**values)
        app = create_app(settings, wrap_transport=wrap_transport)
        with serve(app) as url:
            headers = {"Authorization": f"Bearer {api_key}"} if auth else {}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                yield client

    return make


@pytest.fixture
def client(ingest_app: Callable[..., Any]) -> Iterator[httpx.Client]:
    with ingest_app() as c:
        yield c
