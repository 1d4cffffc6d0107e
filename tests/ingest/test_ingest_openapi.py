"""Schemathesis against the served app's OpenAPI spec (bounded): no 5xx, every response matches the spec."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from eventpipe_ingest.app import create_app
from eventpipe_ingest.settings import IngestSettings
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers.ingest_helpers import serve


@pytest.fixture(scope="module")
def served(kinesis_endpoint: str, stream: str, keys_file: Path, job_store_dsn: str) -> Iterator[str]:
    app = create_app(IngestSettings(kinesis_endpoint_url=kinesis_endpoint, stream_name=stream,
                                    job_store_dsn=job_store_dsn, ingest_api_keys_file=keys_file))
    with serve(app) as url:
        yield url


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_ctx: Any, value: Any) -> bytes:
    """NDJSON bodies are declared as text; a generated value is sent as its text (JSON text for non-strings)."""
    return value.encode("utf-8") if isinstance(value, str) else json.dumps(value).encode("utf-8")


# The spec does not depend on the servers, so it is loaded at collection (schemathesis' lazy fixture loader
# does not support pytest 9); the cases are sent over HTTP to the app served against kinesalite.
schema = schemathesis.openapi.from_dict(create_app(IngestSettings.model_validate({})).openapi())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_spec(case: Any, served: str, api_key: str) -> None:
    """No 5xx other than the declared 503s, and status, content type, headers and body as the spec says.

    The positive/negative data heuristics are off: the NDJSON and CSV bodies are free-form text in the spec
    (any string), so whether one holds valid events is not something the spec can say.
    """
    case.call_and_validate(base_url=served, headers={"Authorization": f"Bearer {api_key}"}, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
        response_schema_conformance])
