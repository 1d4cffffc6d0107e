"""The command line: `python -m eventpipe_transform build [--state-dir DIR] [--target duckdb]`.

Exit codes: 0 when dbt built everything and every test passed, 1 when a model or test failed, 2 when the
configuration is wrong (e.g. a missing Iceberg table).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eventpipe_common.errors import EventpipeError
from eventpipe_common.logging import configure_logging, get_logger

from eventpipe_transform.runner import run_dbt
from eventpipe_transform.settings import TransformSettings
from eventpipe_transform.sources import open_catalog, resolve_sources

COMMANDS = {"build": ["build"], "run": ["run"], "test": ["test"], "compile": ["compile"],
            "docs": ["docs", "generate"]}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="eventpipe_transform", description="Run eventpipe's dbt project.")
    parser.add_argument("command", choices=sorted(COMMANDS), help="dbt command to run (docs = docs generate)")
    parser.add_argument("--state-dir", type=Path, help="local state dir (default: EVENTPIPE_STATE_DIR)")
    parser.add_argument("--target", help="dbt target: duckdb (default) or snowflake")
    parser.add_argument("--namespace", help="Iceberg namespace (default: EVENTPIPE_NAMESPACE)")
    parser.add_argument("--select", help="dbt node selection")
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    return parser.parse_args(argv)


def build_settings(args: argparse.Namespace) -> TransformSettings:
    overrides: dict[str, Any] = {}
    if args.state_dir is not None:
        overrides["state_dir"] = args.state_dir
    if args.target:
        overrides["dbt_target"] = args.target
    if args.namespace:
        overrides["namespace"] = args.namespace
    return TransformSettings(**overrides)


def dbt_vars_for(settings: TransformSettings) -> dict[str, Any]:
    """DuckDB reads the Iceberg files itself, so it needs the metadata locations; Snowflake reads its own
    Iceberg tables (catalog integration) and only needs the namespace."""
    if settings.dbt_target == "duckdb":
        catalog = open_catalog(settings.catalog_name, settings.resolved_catalog_properties())
        return resolve_sources(catalog, settings.namespace).dbt_vars()
    return {"eventpipe_namespace": settings.namespace}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = build_settings(args)
    configure_logging("transform", settings.log_level)
    log = get_logger()
    try:
        dbt_vars = dbt_vars_for(settings)
    except EventpipeError as exc:
        log.error("transform not started", **exc.to_dict())
        return 2
    extra: list[str] = []
    if args.select:
        extra += ["--select", args.select]
    if args.full_refresh and args.command in ("build", "run"):
        extra.append("--full-refresh")
    outcome = run_dbt(COMMANDS[args.command], settings, dbt_vars, extra)
    return 0 if outcome.ok else 1
