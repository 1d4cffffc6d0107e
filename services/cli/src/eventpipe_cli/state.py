"""The local stack's state folder: one place for the catalog, warehouse, stream data, logs, keys and status.

Layout (all under the state dir)::

    catalog.db, warehouse/      Iceberg SQL catalog on SQLite + data files (eventpipe_common.settings defaults)
    jobs.db                     the job store shared by ingest and the consumer
    kinesis/                    kinesalite's LevelDB, so a second `up` resumes the stream
    warehouse.duckdb            dbt's DuckDB database (schemas staging, intermediate, marts)
    quality/                    GX results
    logs/<component>.log        one log per component (JSON lines from the services)
    dev-api-key                 the dev API key in clear, for `send` (mode 0600; never printed, never logged)
    api-keys                    its SHA-256 entry `local-dev:<hex>`, the ingest's EVENTPIPE_INGEST_API_KEYS_FILE
    stack.json                  what `up` is running: pids, ports, URLs (read by `status` and `send`)
    transform.json              the transform loop's last run
    freshness.json              the raw tables' last source freshness check (dbt, before each build)
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEV_KEY_NAME = "local-dev"


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @classmethod
    def at(cls, state_dir: Path | str) -> StatePaths:
        return cls(Path(state_dir).resolve())

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def kinesis(self) -> Path:
        return self.root / "kinesis"

    @property
    def dev_key(self) -> Path:
        return self.root / "dev-api-key"

    @property
    def api_keys(self) -> Path:
        return self.root / "api-keys"

    @property
    def stack(self) -> Path:
        return self.root / "stack.json"

    @property
    def transform(self) -> Path:
        return self.root / "transform.json"

    @property
    def freshness(self) -> Path:
        return self.root / "freshness.json"

    @property
    def lock(self) -> Path:
        return self.root / "up.lock"

    @property
    def duckdb(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def quality(self) -> Path:
        return self.root / "quality"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def create(self) -> None:
        for path in (self.root, self.logs, self.kinesis):
            path.mkdir(parents=True, exist_ok=True)


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (created with 0600, never world-readable, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def ensure_dev_key(paths: StatePaths) -> str:
    """The dev API key of this state folder, created once (a second `up` keeps it, so clients keep working).

    The ingest service only ever sees the key's SHA-256 digest (its keys-file format, `name:<hex>`).
    """
    if paths.dev_key.exists():
        key = read_dev_key(paths)
    else:
        key = "ep_" + secrets.token_urlsafe(32)
        write_private(paths.dev_key, key + "\n")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    write_private(paths.api_keys, f"# written by eventpipe up: the dev key's digest\n{DEV_KEY_NAME}:{digest}\n")
    return key


def read_dev_key(paths: StatePaths) -> str:
    try:
        key = paths.dev_key.read_text(encoding="utf-8").strip()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"no API key in {paths.dev_key}: start the stack with `eventpipe up` first") from exc
    if not key:
        raise ValueError(f"{paths.dev_key} is empty: delete it and run `eventpipe up` again")
    return key


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON status file, or None when it does not exist (yet)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace a status file atomically, so a reader never sees half of it."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
