"""`python -m eventpipe_ingest` as its own process: the entry point, JSON logs, and no secret key in them."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import httpx

from tests.helpers.ingest_events import valid_event
from tests.helpers.servers import free_port, start_process


def test_secret_key_never_appears_in_logs(kinesis_endpoint: str, stream: str, keys_file: Path, api_key: str,
                                          tmp_path: Path) -> None:
    """The API key (valid or not) never reaches the logs, even at DEBUG; the key's name does."""
    port = free_port()
    wrong_key = "epk_wrong_" + api_key[::-1]
    env = {**os.environ, "EVENTPIPE_INGEST_PORT": str(port), "EVENTPIPE_KINESIS_ENDPOINT_URL": kinesis_endpoint,
           "EVENTPIPE_STREAM_NAME": stream, "EVENTPIPE_INGEST_API_KEYS_FILE": str(keys_file),
           "EVENTPIPE_JOB_STORE_DSN": f"sqlite:///{tmp_path / 'jobs.db'}", "EVENTPIPE_LOG_LEVEL": "DEBUG"}
    server = start_process("ingest", [sys.executable, "-m", "eventpipe_ingest"], port, env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            ok = client.post("/api/v1/ingest", json=[valid_event(1)], headers={"Authorization": f"Bearer {api_key}"})
            assert ok.status_code == 202, ok.text
            assert client.post("/api/v1/ingest", json=[valid_event(2)],
                               headers={"X-API-Key": api_key}).status_code == 202
            assert client.get(f"/api/v1/status/{ok.json()['job_id']}",
                              headers={"X-API-Key": api_key}).status_code == 200
            assert client.post("/api/v1/ingest", json=[valid_event(3)],
                               headers={"Authorization": f"Bearer {wrong_key}"}).status_code == 401
            assert client.post("/api/v1/ingest", content=b"{bad", headers={
                "X-API-Key": api_key, "Content-Type": "application/json"}).status_code == 400
    finally:
        # End the process by its PID first so its log is complete, then let stop() clean up.
        os.killpg(server.pid, signal.SIGTERM)
        server.proc.wait(timeout=20)
        log = server.log_path.read_text()
        server.stop()
    assert log, "the process wrote no log"
    assert api_key not in log
    assert wrong_key not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    ingested = [line for line in lines if line.get("message") == "ingested"]
    assert len(ingested) == 2
    assert all(line["client"] == "tests" and line["component"] == "ingest" for line in ingested)
