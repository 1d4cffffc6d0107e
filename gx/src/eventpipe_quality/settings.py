"""The quality component's one settings object: thresholds, where results go, and the alert channels.

Everything comes from EVENTPIPE_* environment variables (see `PipelineSettings`). The webhook URL and the SMTP
password are secrets: they are `SecretStr`, so they never appear in `repr()`, logs or `public_dict()`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eventpipe_common.errors import ConfigurationError
from eventpipe_common.settings import PipelineSettings
from pydantic import Field, SecretStr

# The shop demo's event types (docs/architecture.md, The event contract): the default when no schema is configured.
DEFAULT_EVENT_TYPES: tuple[str, ...] = (
    "page_view",
    "product_view",
    "add_to_cart",
    "purchase",
    "signup",
    "identify",
    "product_updated",
)


def _default_cache_dir() -> Path:
    return Path(os.environ.get("EVENTPIPE_CACHE", str(Path.home() / ".cache" / "eventpipe")))


class QualitySettings(PipelineSettings):
    """Settings of `python -m eventpipe_quality`; the warehouse is `<state_dir>/warehouse.duckdb` by default."""

    # Where the data is
    warehouse_path: Path | None = Field(None, description="DuckDB file; empty means <state_dir>/warehouse.duckdb.")
    warehouse_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL of a remote warehouse (e.g. snowflake://...); when set it replaces DuckDB. "
        "Secret because such URLs usually carry a password.",
    )

    # Thresholds of the suites
    quality_max_clock_skew_seconds: float = Field(300.0, ge=0, description="event_ts may be this far in the future.")
    quality_amount_min: float = 0.0
    quality_amount_max: float = 1_000_000.0
    quality_max_rejected_share: float = Field(0.05, ge=0, le=1, description="rejected / (accepted + rejected).")
    quality_row_count_tolerance: float = Field(
        0.0, ge=0, le=1, description="Allowed relative gap between fact_events and stg_events row counts."
    )
    quality_result_format: str = Field(
        "COMPLETE", description="GX result format; COMPLETE lists every failing row (needed to locate them)."
    )
    quality_failure_sample_size: int = Field(20, ge=1, description="Failing values quoted per failed expectation.")
    quality_assets_dir: Path | None = Field(
        None, description="Vendored Data Docs CSS/JS; empty means ~/.cache/eventpipe/gx-assets-<manifest>."
    )
    quality_docs_base_url: str | None = Field(
        None, description="Where <state_dir>/quality is served (for links in alerts); empty means file paths."
    )

    # Alert channels: any of them, or none
    alert_webhook_url: SecretStr | None = Field(None, description="Slack-compatible incoming webhook (secret).")
    alert_smtp_host: str | None = None
    alert_smtp_port: int = 25
    alert_smtp_starttls: bool = False
    alert_smtp_user: str | None = None
    alert_smtp_password: SecretStr | None = None
    alert_email_from: str = "eventpipe-quality@localhost"
    alert_email_to: list[str] = Field(default_factory=list)
    alert_timeout_seconds: float = 10.0

    @property
    def quality_dir(self) -> Path:
        return self.state_dir / "quality"

    def resolved_warehouse_path(self) -> Path:
        return self.warehouse_path or self.state_dir / "warehouse.duckdb"

    def resolved_assets_dir(self) -> Path:
        if self.quality_assets_dir is not None:
            return self.quality_assets_dir
        from eventpipe_quality.assets import manifest_digest

        return _default_cache_dir() / f"gx-assets-{manifest_digest()}"

    def allowed_event_types(self) -> list[str] | None:
        """The pipeline schema's `event_types` list; the shop demo's types when no schema is configured.

        None when a schema is configured without `event_types`: the core then accepts any type, and so do we.
        """
        text = self.load_schema_json()
        if text is None:
            return list(DEFAULT_EVENT_TYPES)
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"EVENTPIPE_SCHEMA_PATH {self.schema_path}: invalid JSON at line {exc.lineno}: {exc.msg}",
                field="schema_path",
                line=exc.lineno,
            ) from exc
        if not isinstance(schema, dict):
            raise ConfigurationError(f"EVENTPIPE_SCHEMA_PATH {self.schema_path}: expected a JSON object",
                                     field="schema_path")
        types = schema.get("event_types")
        if types is None:
            return None
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise ConfigurationError(
                f"EVENTPIPE_SCHEMA_PATH {self.schema_path}: field event_types must be a list of strings",
                field="event_types",
            )
        return list(types)
