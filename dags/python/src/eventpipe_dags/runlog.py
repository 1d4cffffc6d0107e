"""The run log (Property 20): one JSON line per run outcome, task failure and retry, kept beside Airflow's own
task logs so a run's story survives the metadata database being reset. Locally also `<state>/transform.json`,
which `eventpipe status` and `wait --modelled` read (the same record the light transform loop writes).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def run_log_path() -> Path:
    explicit = os.environ.get("EVENTPIPE_DAGS_RUN_LOG")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("EVENTPIPE_STATE_DIR", ".eventpipe")) / "airflow" / "runs.jsonl"


def append(record: dict[str, Any], path: Path | None = None) -> Path:
    target = path or run_log_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record}, sort_keys=True,
                      default=str)
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return target


def read(path: Path | None = None) -> list[dict[str, Any]]:
    target = path or run_log_path()
    if not target.exists():
        return []
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line.strip()]
