"""Fixtures shared by every test suite: real servers on 127.0.0.1, started once per session.

Only the standard library is imported here because each component's tests run in the virtualenv of its
image (.venvs/services, .venvs/analytics, .venvs/operator). Fixtures live in conftest.py files; what tests import
(helpers, constants, strategies) lives in the tests/helpers package, imported as `from tests.helpers.<module> import`
(pyproject.toml's pytest `pythonpath` puts the repository root on sys.path).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers.servers import ServerProcess, start_kinesalite, start_moto, start_postgres

# Dummy credentials for the local AWS API servers; they check none, but the SDKs insist on having some.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def kinesalite() -> Iterator[ServerProcess]:
    server = start_kinesalite()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kinesis_endpoint(kinesalite: ServerProcess) -> str:
    return f"http://127.0.0.1:{kinesalite.port}"


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    server, dsn = start_postgres()
    yield dsn
    server.stop()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = start_moto()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()
