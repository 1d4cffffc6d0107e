"""Consumer fixtures: a fresh stream on the session's kinesalite, a temporary SQL catalog with both tables, and
the child consumers a test started (killed after it). The helpers they use are in tests/helpers/consumer_helpers.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from tests.helpers.consumer_helpers import ChildConsumer, Stream, new_tables


@pytest.fixture
def make_stream(kinesis_endpoint: str) -> Iterator[Callable[[int], Stream]]:
    client = boto3.client("kinesis", endpoint_url=kinesis_endpoint, region_name="us-east-1")
    created: list[str] = []

    def factory(shards: int = 1) -> Stream:
        name = f"consumer-test-{uuid.uuid4().hex[:10]}"
        client.create_stream(StreamName=name, ShardCount=shards)
        created.append(name)
        stream = Stream(kinesis_endpoint, name, client)
        stream.wait_active()
        return stream

    yield factory
    for name in created:
        client.delete_stream(StreamName=name)


@pytest.fixture
def stream(make_stream: Callable[[int], Stream]) -> Stream:
    return make_stream(1)


@pytest.fixture
def tables(tmp_path: Path) -> tuple[Catalog, Table, Table]:
    """A fresh SQL catalog (SQLite) with a file warehouse and both tables."""
    return new_tables(tmp_path)


@pytest.fixture
def children() -> Iterator[list[ChildConsumer]]:
    started: list[ChildConsumer] = []
    yield started
    for child in started:
        child.kill()
