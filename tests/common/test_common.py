"""The conventions every component shares: settings from the environment, JSON logs, the error style."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from eventpipe_common.errors import ConfigurationError, EventpipeError
from eventpipe_common.logging import configure_logging, get_logger
from eventpipe_common.settings import PipelineSettings


def test_settings_defaults_are_the_embedded_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTPIPE_STATE_DIR", str(tmp_path))
    settings = PipelineSettings()
    props = settings.resolved_catalog_properties()
    assert props["type"] == "sql"
    assert props["uri"] == f"sqlite:///{tmp_path / 'catalog.db'}"
    assert props["warehouse"] == (tmp_path / "warehouse").as_uri()
    assert settings.resolved_job_store_dsn() == f"sqlite:///{tmp_path / 'jobs.db'}"
    assert settings.load_schema_json() is None


def test_settings_read_nested_catalog_properties_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTPIPE_CATALOG_PROPERTIES", json.dumps({"type": "glue", "warehouse": "s3://b/w"}))
    monkeypatch.setenv("EVENTPIPE_STREAM_NAME", "clicks")
    settings = PipelineSettings()
    assert settings.resolved_catalog_properties() == {"type": "glue", "warehouse": "s3://b/w"}
    assert settings.stream_name == "clicks"


def test_logs_are_json_lines_with_component_and_redacted_secrets() -> None:
    out = io.StringIO()
    configure_logging("tester", stream=out)
    get_logger().info("hello", records=3, api_key="sk-very-secret")
    logging.getLogger("some.library").warning("from stdlib %s", "logging")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["message"] == "hello"
    assert lines[0]["component"] == "tester"
    assert lines[0]["level"] == "info"
    assert lines[0]["records"] == 3
    assert "timestamp" in lines[0]
    assert "sk-very-secret" not in out.getvalue()
    assert lines[1]["message"] == "from stdlib logging"
    assert lines[1]["component"] == "tester"
    assert lines[1]["level"] == "warning"


def test_errors_carry_code_and_details() -> None:
    err = ConfigurationError("EVENTPIPE_STREAM_NAME is empty", setting="stream_name")
    assert isinstance(err, EventpipeError)
    assert err.to_dict() == {"code": "configuration_error", "message": "EVENTPIPE_STREAM_NAME is empty",
                             "setting": "stream_name"}
