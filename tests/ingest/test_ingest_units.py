"""Pure parts of ingest: PutRecords batching within the limits, partition keys, backoff, bodies, key files."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import uuid
from pathlib import Path

import botocore.session
import pytest
import structlog
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from eventpipe_common.errors import ConfigurationError
from eventpipe_common.logging import configure_logging, get_logger, info_enabled
from eventpipe_ingest.api.routes.ingest import job_id_of, new_job_id
from eventpipe_ingest.auth import hash_key, load_api_keys
from eventpipe_ingest.body import BodyTooLargeError, UnsupportedMediaTypeError, decode_content, format_for
from eventpipe_ingest.kinesis import CONTENT_TYPE, TARGET, error_code, put_records_body
from eventpipe_ingest.publisher import backoff_delay
from eventpipe_ingest.records import (
    MAX_BYTES_PER_CALL,
    MAX_BYTES_PER_RECORD,
    MAX_RECORDS_PER_CALL,
    plan_batches,
)
from eventpipe_ingest.rejects import REJECT_PREFIX, TRUNCATED_MARKER, RefusedLine, reject_record
from eventpipe_ingest.sigv4 import PostSigner
from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.one_of(st.integers(1, 2000), st.integers(MAX_BYTES_PER_RECORD // 2, MAX_BYTES_PER_RECORD)),
                      max_size=1500))
def test_batches_cover_all_records_in_order_within_limits(sizes: list[int]) -> None:
    batches = plan_batches(sizes)
    assert [i for b in batches for i in b] == list(range(len(sizes)))
    for batch in batches:
        assert 1 <= len(batch) <= MAX_RECORDS_PER_CALL
        assert sum(sizes[i] for i in batch) <= MAX_BYTES_PER_CALL
    # Greedy: a batch is closed only when the next record would break a limit.
    for current, following in zip(batches, batches[1:], strict=False):
        total = sum(sizes[i] for i in current) + sizes[following.start]
        assert len(current) == MAX_RECORDS_PER_CALL or total > MAX_BYTES_PER_CALL


@given(attempt=st.integers(0, 40), r=st.floats(0, 1))
def test_backoff_is_jittered_and_capped(attempt: int, r: float) -> None:
    delay = backoff_delay(attempt, 0.05, 2.0, rand=lambda: r)
    assert 0 <= delay <= min(2.0, 0.05 * 2**attempt)
    assert delay == pytest.approx(r * min(2.0, 0.05 * 2**attempt))


def test_content_types() -> None:
    assert format_for("application/json; charset=utf-8") == "json"
    assert format_for("application/x-ndjson") == "ndjson"
    assert format_for("TEXT/CSV") == "csv"
    with pytest.raises(UnsupportedMediaTypeError, match="text/plain"):
        format_for("text/plain")


def test_gzip_limit_applies_to_the_decompressed_size() -> None:
    data = b"x" * 10_000
    assert decode_content(gzip.compress(data), "gzip", 10_000) == data
    with pytest.raises(BodyTooLargeError, match="9999"):
        decode_content(gzip.compress(data), "gzip", 9_999)
    assert decode_content(data, None, 1) == data  # identity bodies are limited while being read


def test_key_file_format_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# comment\n\nalice:{hash_key('k1')}\nbob:{hash_key('k2').upper()}\n")
    keys = load_api_keys(path, f"carol:{hash_key('k3')}")
    assert [keys.verify(k) for k in ("k1", "k2", "k3", "k4")] == ["alice", "bob", "carol", None]
    path.write_text("alice:k1-in-clear\n")
    with pytest.raises(ConfigurationError, match="entry 1") as info:
        load_api_keys(path, None)
    assert "k1-in-clear" not in str(info.value)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_api_keys(tmp_path / "missing", None)


BOTOCORE_KINESIS = botocore.session.get_session().create_client(
    "kinesis", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")


@settings(max_examples=50, deadline=None)
@given(records=st.lists(st.tuples(st.binary(min_size=1, max_size=300), st.text(min_size=1, max_size=256)),
                        min_size=1, max_size=20))
def test_lean_put_records_body_equals_botocores(records: list[tuple[bytes, str]]) -> None:
    """The hand-built PutRecords body is the request botocore itself would send (same JSON document)."""
    client = BOTOCORE_KINESIS
    entries = [{"Data": d, "PartitionKey": k} for d, k in records]
    expected = client._serializer.serialize_to_request(
        {"StreamName": "s-1", "Records": entries}, client.meta.service_model.operation_model("PutRecords"))
    body, body_sha256 = put_records_body("s-1", records)
    assert json.loads(body) == json.loads(expected["body"])
    assert body_sha256 == hashlib.sha256(body).hexdigest()
    assert expected["headers"]["X-Amz-Target"] == TARGET
    assert expected["headers"]["Content-Type"] == CONTENT_TYPE


def test_error_codes_of_json_protocol_answers() -> None:
    assert error_code(b'{"__type":"ResourceNotFoundException","message":"Stream s not found"}') == (
        "ResourceNotFoundException", "Stream s not found")
    assert error_code(b'{"__type":"com.amazonaws.kinesis#ProvisionedThroughputExceededException",'
                      b'"Message":"Rate exceeded"}') == ("ProvisionedThroughputExceededException", "Rate exceeded")
    assert error_code(b"<html>bad gateway</html>")[0] == "InternalFailure"


@settings(max_examples=60, deadline=None)
# The limit is 1 MiB in production; below ~350 bytes not even the envelope and the truncation reason fit.
@given(raw=st.text(max_size=400), line=st.integers(1, 10_000), limit=st.integers(400, 2000))
def test_reject_record_always_fits_one_kinesis_record(raw: str, line: int, limit: int) -> None:
    """A reject record starts with the prefix the consumer looks for and never exceeds the record limit (data +
    partition key); a raw line that does not fit is cut, marked, and a "truncated" reason says so."""
    job_id = "5f0c8a9e-2b1d-4c3e-9f7a-0123456789ab"
    reasons = [{"field": "timestamp", "rule": "timestamp", "message": "not an RFC 3339 timestamp"}]
    data = reject_record(RefusedLine(line, raw, reasons), job_id, limit=limit)
    assert data.startswith(REJECT_PREFIX)
    assert len(data) + len(job_id) <= limit
    value = json.loads(data)
    assert list(value) == ["_reject", "_job_id"] and value["_job_id"] == job_id
    reject = value["_reject"]
    assert (reject["line"], reject["source"]) == (line, "ingest")
    if reject["raw"] == raw:
        assert reject["reasons"] == reasons
    else:
        assert reject["raw"].endswith(TRUNCATED_MARKER)
        assert raw.startswith(reject["raw"][:-len(TRUNCATED_MARKER)])
        # The original reasons stay unless even they do not fit beside the envelope (limits under ~450 bytes here).
        assert [r["rule"] for r in reject["reasons"]] in (["timestamp", "truncated"], ["truncated"])


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=500), token=st.one_of(st.none(), st.text("abcXYZ019/+=", min_size=1, max_size=40)),
       url=st.sampled_from(["http://127.0.0.1:4567", "https://kinesis.eu-west-1.amazonaws.com",
                            "https://kinesis.eu-west-1.amazonaws.com:443/", "http://localhost:80"]),
       region=st.sampled_from(["us-east-1", "eu-west-1"]))
def test_sigv4_signer_signs_as_botocore_does(body: bytes, token: str | None, url: str, region: str) -> None:
    """The lean signer's headers equal those botocore's SigV4Auth adds to the same request at the same instant."""
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    fixed = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET}
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(fixed))
    SigV4Auth(credentials.get_frozen_credentials(), "kinesis", region).add_auth(request)
    expected = dict(request.headers.items())
    signed = PostSigner(url, region, "kinesis", fixed).headers(
        credentials.get_frozen_credentials(), hashlib.sha256(body).hexdigest(), amz_date=expected["X-Amz-Date"])
    assert signed == expected


@settings(max_examples=500, deadline=None)
@given(random16=st.binary(min_size=16, max_size=16))
def test_job_id_is_the_uuid4_of_the_same_bytes(random16: bytes) -> None:
    """The job id formatted directly equals uuid's version 4 UUID of the same 16 random bytes (uuid.uuid4 is
    `UUID(bytes=os.urandom(16), version=4)`), so the ids are the same kind of text as before."""
    assert job_id_of(random16) == str(uuid.UUID(bytes=random16, version=4))


def test_new_job_ids_are_version_4_uuids() -> None:
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


@settings(max_examples=60, deadline=None)
@given(level=st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "info", "warning", "nonsense"]))
def test_info_enabled_says_whether_log_info_writes(level: str) -> None:
    """The route's check before its per-request info line agrees with what structlog's logger would do."""
    buffer = io.StringIO()
    configure_logging("ingest", level, stream=buffer)
    try:
        get_logger(component="ingest").info("probe", n=1)
        assert info_enabled() == ("probe" in buffer.getvalue())
    finally:
        configure_logging("ingest", "INFO")


def test_info_enabled_without_configuration_is_true() -> None:
    structlog.reset_defaults()
    try:
        assert info_enabled()
    finally:
        configure_logging("ingest", "INFO")
