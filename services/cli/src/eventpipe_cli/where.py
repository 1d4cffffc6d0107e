"""The "Where to look" summary of a running local stack: its URLs, files and commands to try.

Printed by `eventpipe up` once the stack is ready, by `eventpipe where`, and at the end of `make run`; built from
stack.json (the ports the stack really uses). Every command in it is run by tests/docs against a stack.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

TRY_QUERY = "select * from warehouse.marts.dim_users where user_id = 'u_1'"
RAW_QUERY = "select event_type, count(*) from raw_events group by 1"


def eventpipe_command() -> str:
    """How to call this CLI again: the `eventpipe` script beside this interpreter, or `eventpipe` on PATH."""
    script = Path(sys.executable).parent / "eventpipe"
    return str(script) if script.exists() else "eventpipe"


def where_to_look(info: dict[str, Any], state_dir: Path, eventpipe: str) -> list[tuple[str, str]]:
    """(label, value) rows; a value that starts with `eventpipe` is a shell command."""
    urls: dict[str, str] = info.get("urls", {})
    state = shlex.quote(str(state_dir))
    ep = f"{shlex.quote(eventpipe)} "
    components = sorted(info.get("components", {}))
    return [
        ("API docs (OpenAPI)", urls.get("api docs", "-")),
        ("dashboard", urls.get("dashboard", "not running (no .venvs/dashboard, or --no-monitoring)")),
        ("Prometheus", urls.get("prometheus", "not running (no prometheus binary, or --no-monitoring)")),
        ("ingest metrics", urls.get("ingest metrics", "-")),
        ("consumer metrics", urls.get("consumer metrics", "-")),
        ("pipeline status", f"{ep}status --state-dir {state}"),
        ("a query to try", f'{ep}query --state-dir {state} "{TRY_QUERY}"'),
        ("raw events", f'{ep}query --state-dir {state} "{RAW_QUERY}"'),
        ("quality results", f"{state_dir / 'quality'}  (Data Docs HTML, JSON results)"),
        ("logs", f"{ep}logs --state-dir {state} --tail 20"),
        ("log files", f"{state_dir / 'logs'}/<component>.log  ({', '.join(components)})"),
        ("more traffic", f"{ep}send --state-dir {state} --count 10000 --rate 1000 --wait"),
    ]


def render(rows: list[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in rows)
    return "Where to look\n" + "\n".join(f"  {label.ljust(width)}  {value}" for label, value in rows)
