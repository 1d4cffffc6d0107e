"""The command line: `python -m eventpipe_transform build [--state-dir DIR] [--target duckdb] [--snapshot-id ID]`.

`build` checks the raw tables' source freshness first (reported, never blocking), then runs `dbt build`;
`freshness` runs only the check.
Exit codes: 0 when dbt built everything and every test passed (freshness: no source past its error threshold),
1 when a model or test failed (freshness: a source past its error threshold), 2 when the configuration is wrong
(e.g. a missing Iceberg table, a snapshot the table does not have).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eventpipe_common.errors import EventpipeError
from eventpipe_common.logging import configure_logging, get_logger

from eventpipe_transform.freshness import check_freshness
from eventpipe_transform.runner import run_dbt
from eventpipe_transform.settings import TransformSettings
from eventpipe_transform.sources import open_catalog, parse_snapshot_id, promoted_from_schema, resolve_sources

COMMANDS = {"build": ["build"], "run": ["run"], "test": ["test"], "compile": ["compile"],
            "docs": ["docs", "generate"], "freshness": ["source", "freshness"]}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="eventpipe_transform", description="Run eventpipe's dbt project.")
    parser.add_argument("command", choices=sorted(COMMANDS), help="dbt command to run (docs = docs generate)")
    parser.add_argument("--state-dir", type=Path, help="local state dir (default: EVENTPIPE_STATE_DIR)")
    parser.add_argument("--target", help="dbt target: duckdb (default) or snowflake")
    parser.add_argument("--namespace", help="Iceberg namespace (default: EVENTPIPE_NAMESPACE)")
    parser.add_argument("--select", help="dbt node selection")
    parser.add_argument("--snapshot-id", help="read raw_events as of this snapshot (default: EVENTPIPE_SNAPSHOT_ID, "
                                              "else the current one)")
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
    if args.snapshot_id:
        overrides["snapshot_id"] = args.snapshot_id
    return TransformSettings(**overrides)


def dbt_vars_for(settings: TransformSettings) -> dict[str, Any]:
    """The pipeline's vars. DuckDB reads the Iceberg files itself, so it needs the metadata locations (and the
    run's snapshot); Snowflake reads its own Iceberg tables (catalog integration): namespace and promoted columns
    come from the settings and the pipeline schema."""
    thresholds = {"freshness_warn_after_minutes": settings.freshness_warn_after_minutes,
                  "freshness_error_after_minutes": settings.freshness_error_after_minutes}
    if settings.dbt_target == "duckdb":
        catalog = open_catalog(settings.catalog_name, settings.resolved_catalog_properties())
        sources = resolve_sources(catalog, settings.namespace, parse_snapshot_id(settings.snapshot_id))
        return {**sources.dbt_vars(), **thresholds}
    return {"eventpipe_namespace": settings.namespace,
            "promoted_columns": list(promoted_from_schema(settings.load_schema_json())), **thresholds}


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
    if args.command == "freshness":
        return 0 if check_freshness(settings, dbt_vars).status in ("pass", "warn") else 1
    if args.command == "build":
        check_freshness(settings, dbt_vars)  # reported (log, freshness.json), never a reason not to build
    outcome = run_dbt(COMMANDS[args.command], settings, dbt_vars, extra)
    return 0 if outcome.ok else 1
