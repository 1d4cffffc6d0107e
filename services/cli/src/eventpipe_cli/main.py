"""The `eventpipe` command: run the local stack, send sample traffic, look at what happened.

    eventpipe up                       # the whole pipeline on 127.0.0.1, state in ./.eventpipe, Ctrl-C stops it
    eventpipe up --detach              # the same in the background; `eventpipe down` stops it
    eventpipe send --count 5000 --duplicates 0.02 --invalid 0.01 --wait
    eventpipe status [-o table|json|csv]
    eventpipe query "select event_type, count(*) from raw_events group by 1" [-o table|json|csv]
    eventpipe logs [component] [-f]
    eventpipe bench                    # benchmark W3 (bench/w3.py)

Exit codes: eventpipe_cli.exitcodes (the table in services/cli/README.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eventpipe_cli import background, catalog, locations, output
from eventpipe_cli import logs as logfiles
from eventpipe_cli import send as sender
from eventpipe_cli.exitcodes import ExitCode
from eventpipe_cli.generator import GeneratorConfig, generate
from eventpipe_cli.stack import Stack, StackConfig, plan_components, run, tail
from eventpipe_cli.stack import urls as stack_urls
from eventpipe_cli.state import StatePaths, read_dev_key, read_json
from eventpipe_cli.status import gather, pid_alive
from eventpipe_cli.waiting import waiting
from eventpipe_cli.where import eventpipe_command, render, where_to_look

app = typer.Typer(help="eventpipe: the streaming pipeline on your machine. Exit codes: 0 ok, 1 failed, "
                       "2 usage or configuration, 3 no running stack, 4 timed out, 130 interrupted.",
                  no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False)
console = Console()
err = Console(stderr=True)

StateDir = Annotated[Path, typer.Option("--state-dir", envvar="EVENTPIPE_STATE_DIR",
                                        help="The local stack's state folder.")]
DEFAULT_STATE = Path(".eventpipe")
OutputOption = Annotated[output.Output, typer.Option("--output", "-o", case_sensitive=False,
                                                     help="table (for people), json or csv (for scripts; "
                                                          "stable, see services/cli/README.md).")]


def _stack_info(state_dir: Path) -> dict[str, Any]:
    info = read_json(StatePaths.at(state_dir).stack)
    if info is None:
        err.print(f"[red]no running stack in {state_dir.resolve()}[/]: start one with `eventpipe up`")
        raise typer.Exit(ExitCode.NO_STACK)
    return info


def _ingest_base(state_dir: Path, url: str | None) -> str:
    if url:
        return url.rstrip("/")
    return f"http://127.0.0.1:{_stack_info(state_dir)['config']['ingest_port']}"


@app.command()
def up(
    ctx: typer.Context,
    state_dir: StateDir = DEFAULT_STATE,
    ingest_port: Annotated[int, typer.Option(help="Ingest API port on 127.0.0.1.")] = 8000,
    kinesis_port: Annotated[int, typer.Option(help="kinesalite port on 127.0.0.1.")] = 4567,
    ingest_metrics_port: Annotated[int, typer.Option(help="Ingest /metrics port on 127.0.0.1.")] = 9104,
    metrics_port: Annotated[int, typer.Option(help="Consumer /metrics port on 127.0.0.1.")] = 9102,
    shards: Annotated[int, typer.Option(min=1, help="Shards of a new stream (an existing one is kept).")] = 2,
    commit_interval: Annotated[float, typer.Option(help="Consumer commit interval, seconds.")] = 2.0,
    transform_interval: Annotated[float, typer.Option(help="Minimum seconds between dbt + GX runs.")] = 10.0,
    transform_settle: Annotated[float, typer.Option(
        help="Seconds the tables must stay unchanged before dbt + GX run.")] = 3.0,
    schema: Annotated[Path | None, typer.Option(help="Pipeline schema (default: examples/shop-schema.json).")] = None,
    transform: Annotated[bool, typer.Option(help="Run dbt + GX after new snapshots.")] = True,
    persist_stream: Annotated[bool, typer.Option(help="Keep the stream's data in the state folder.")] = True,
    monitoring: Annotated[bool, typer.Option(help="Start Prometheus and the dashboard when installed.")] = True,
    prometheus_port: Annotated[int, typer.Option(help="Prometheus port on 127.0.0.1.")] = 9090,
    dashboard_port: Annotated[int, typer.Option(help="Streamlit dashboard port on 127.0.0.1.")] = 8501,
    transform_metrics_port: Annotated[int, typer.Option(help="Transform loop /metrics port (quality).")] = 9103,
    airflow: Annotated[bool, typer.Option("--airflow", help="Run Airflow 3 (UI on 127.0.0.1:8080) instead of the "
                                          "light transform loop (needs scripts/venv.sh airflow).")] = False,
    airflow_port: Annotated[int, typer.Option(help="Airflow UI/API port on 127.0.0.1.")] = 8080,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background: return once every "
                                         "component is ready (`eventpipe down` stops it; log in <state>/logs/up.log).")]
    = False,
    timeout: Annotated[float, typer.Option(help="Seconds --detach waits for every component to be ready.")] = 300.0,
) -> None:
    """Start the pipeline: kinesalite, consumer, ingest, transform loop, Prometheus, dashboard.

    In the foreground until Ctrl-C, or in the background with --detach (stopped by `eventpipe down`)."""
    paths = StatePaths.at(state_dir)
    if detach:
        _up_detached(paths, background.forwarded_options(ctx.command, ctx.params, {"detach", "timeout"}),
                     timeout)
        return
    config = StackConfig(state_dir=paths.root, ingest_port=ingest_port, kinesis_port=kinesis_port,
                         ingest_metrics_port=ingest_metrics_port,
                         consumer_metrics_port=metrics_port, shards=shards, commit_interval=commit_interval,
                         transform_interval=transform_interval, transform_settle=transform_settle,
                         transform=transform, persist_stream=persist_stream, monitoring=monitoring,
                         prometheus_port=prometheus_port, dashboard_port=dashboard_port,
                         transform_metrics_port=transform_metrics_port,
                         schema_path=(schema or locations.shop_schema()).resolve(),
                         airflow=airflow, airflow_port=airflow_port)
    if transform and not config.analytics_python.exists():
        err.print(f"[yellow]warning[/]: {config.analytics_python} is missing, so dbt and GX cannot run; "
                  "create it with `scripts/venv.sh analytics`")
    specs = plan_components(config, paths, locations.kinesalite_bin())
    if airflow:
        from eventpipe_cli import airflow_stack

        paths.create()
        airflow_stack.prepare(paths, config.namespace, next(s.env for s in specs if s.name.startswith("airflow")))
    resumed = paths.stack.exists() or (paths.root / "catalog.db").exists()

    def ready() -> None:
        table = Table(title="eventpipe is running" + (" (resumed from its state)" if resumed else ""),
                      show_header=False)
        for name, url in stack_urls(config).items():
            table.add_row(name, url)
        table.add_row("state", str(paths.root))
        table.add_row("logs", str(paths.logs))
        console.print(table)
        if airflow:
            from eventpipe_cli import airflow_stack

            password = airflow_stack.admin_password(paths) or f"(see {paths.root}/airflow/passwords.json)"
            console.print(f"Airflow UI: [bold]http://127.0.0.1:{airflow_port}[/]  user [bold]admin[/], "
                          f"password [bold]{password}[/]")
        typer.echo(render(where_to_look(read_json(paths.stack) or {}, paths.root, eventpipe_command())))
        console.print("Send sample traffic: [bold]eventpipe send --count 5000 --wait[/]   Stop: [bold]Ctrl-C[/]")

    stack = Stack(config, paths, specs, say=lambda line: console.print(f"[dim]{line}[/]"))
    raise typer.Exit(run(stack, on_ready=ready))


def _up_detached(paths: StatePaths, argv: list[str], timeout: float) -> None:
    info = read_json(paths.stack)
    if info is not None and pid_alive(info.get("pid")):
        err.print(f"[red]a stack is already running on {paths.root}[/] (pid {info['pid']}); "
                  "`eventpipe down` stops it")
        raise typer.Exit(ExitCode.FAILED)
    proc = background.start(paths, argv)
    with waiting(err, f"starting the stack in the background (log: {paths.log('up')})") as update:
        problem = background.wait_started(paths, proc, timeout, update)
    if problem is not None:
        if proc.poll() is None:
            background.stop(proc.pid, 60.0, lambda _detail: None)
        err.print(f"[red]the stack did not start[/]: {problem}")
        err.print(tail(paths.log("up")), markup=False, highlight=False)
        raise typer.Exit(ExitCode.TIMEOUT if problem == "timed out" else ExitCode.FAILED)
    typer.echo(render(where_to_look(read_json(paths.stack) or {}, paths.root, eventpipe_command())))
    typer.echo(f"Running in the background (pid {proc.pid}). Stop it with: "
               f"{eventpipe_command()} down --state-dir {shlex.quote(str(paths.root))}")


@app.command()
def down(
    state_dir: StateDir = DEFAULT_STATE,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the stack to stop.")] = 120.0,
) -> None:
    """Stop the stack running on this state folder (started with `up --detach`, or in another terminal).

    Same as Ctrl-C on a foreground `up`: components stopped in reverse order, by PID. Nothing running: exit 0."""
    paths = StatePaths.at(state_dir)
    info = read_json(paths.stack)
    pid = info.get("pid") if info is not None else None
    if not pid_alive(pid):
        console.print(f"no running stack in {paths.root}")
        return
    assert pid is not None
    with waiting(err, f"stopping the stack (pid {pid})") as update:
        stopped = background.stop(int(pid), timeout, update)
    if not stopped:
        err.print(f"[red]the stack (pid {pid}) did not stop within {timeout:.0f}s[/] (see {paths.logs})")
        raise typer.Exit(ExitCode.TIMEOUT)
    console.print(f"stopped the stack in {paths.root}")


@app.command()
def send(
    state_dir: StateDir = DEFAULT_STATE,
    count: Annotated[int, typer.Option(min=0, help="Lines to send.")] = 1000,
    rate: Annotated[float, typer.Option(min=0, help="Events per second (0: no limit).")] = 0.0,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Events per request.")] = 500,
    duplicates: Annotated[float, typer.Option(min=0, max=0.9, help="Share of re-sent lines.")] = 0.0,
    invalid: Annotated[float, typer.Option(min=0, max=0.9, help="Share of invalid lines.")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Generator seed (default: random).")] = None,
    users: Annotated[int, typer.Option(min=1, help="Distinct user ids in the generated traffic.")] = 200,
    url: Annotated[str | None, typer.Option(help="Ingest base URL (default: the running stack's).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until every job is committed.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 300.0,
) -> None:
    """Generate shop events and POST them with a progress bar, a rate limit and a summary."""
    base = _ingest_base(state_dir, url)
    try:
        api_key = os.environ.get("EVENTPIPE_API_KEY") or read_dev_key(StatePaths.at(state_dir))
    except (OSError, ValueError) as exc:
        err.print(f"[red]{exc}[/] (or set EVENTPIPE_API_KEY)")
        raise typer.Exit(ExitCode.USAGE) from exc
    config = GeneratorConfig(seed=seed if seed is not None else int.from_bytes(os.urandom(4), "big"), users=users,
                             duplicate_share=duplicates, invalid_share=invalid)
    lines = generate(config, count)
    with Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TextColumn("events"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("send", total=count)
        summary = sender.send(f"{base}/api/v1/ingest", api_key, lines, batch_size=batch_size, rate=rate,
                              on_batch=lambda n: progress.advance(task, n))
    table = Table(title="sent", show_header=False)
    for label, value in (("lines", summary.lines), ("requests", summary.requests),
                         ("accepted", summary.accepted), ("rejected", summary.rejected),
                         ("failed requests", summary.failed_requests), ("retries (429/503)", summary.retries),
                         ("seconds", f"{summary.seconds:.1f}"), ("lines/s", f"{summary.lines_per_second:,.0f}")):
        table.add_row(label, str(value))
    console.print(table)
    for error in summary.errors[:5]:
        err.print(f"[red]{error}[/]")
    for reject in summary.rejects[:3]:
        console.print(f"[yellow]rejected[/] {json.dumps(reject)[:200]}")
    if wait and summary.job_ids:
        with Progress(TextColumn("committing"), BarColumn(), MofNCompleteColumn(), TextColumn("jobs"),
                      TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("commit", total=len(summary.job_ids))
            try:
                states = sender.wait_committed(base, api_key, summary.job_ids, timeout,
                                               on_poll=lambda done, _total: progress.update(task, completed=done))
            except TimeoutError as exc:
                err.print(f"[red]{exc}[/]")
                raise typer.Exit(ExitCode.TIMEOUT) from exc
        failed = [job for job, state in states.items() if state.get("state") == "failed"]
        committed = sum(int(state.get("committed", 0)) for state in states.values())
        console.print(f"committed: {committed} events in {len(states) - len(failed)} jobs"
                      + (f"; [red]{len(failed)} jobs failed[/]" if failed else ""))
        if failed:
            raise typer.Exit(ExitCode.FAILED)
    if summary.failed_requests:
        raise typer.Exit(ExitCode.FAILED)


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return f"{moment:%H:%M:%S} UTC ({time.time() - ms / 1000:.0f}s ago)"


@app.command()
def status(
    state_dir: StateDir = DEFAULT_STATE,
    out: OutputOption = output.Output.table,
    as_json: Annotated[bool, typer.Option("--json", hidden=True, help="Same as -o json (kept for scripts).")]
    = False,
) -> None:
    """Jobs, shards, lag, last snapshot, last quality run (works on a stopped stack too: its tables and jobs)."""
    report = gather(state_dir)
    if as_json or out is output.Output.json:
        typer.echo(output.status_json(report))
    elif out is output.Output.csv:
        typer.echo(output.status_csv(report), nl=False)
    else:
        print_status(report, state_dir)


def print_status(report: dict[str, Any], state_dir: Path) -> None:
    """The status report as tables, for people."""
    stack = report["stack"]
    procs = Table(title=f"stack in {report['state_dir']}: " + ("running" if stack["running"] else "stopped"))
    for column in ("component", "pid", "alive", "restarts", "log"):
        procs.add_column(column)
    for name, info in stack.get("components", {}).items():
        procs.add_row(name, str(info.get("pid")), "yes" if info["alive"] else "[red]no[/]", str(info.get("restarts")),
                      info.get("log", ""))
    console.print(procs)
    if "shards" in report or "lag_ms" in report:
        lag = report.get("lag_ms", {})
        stopped = report.get("consumer", {}).get("stopped_shards", {})
        shard_table = Table(title="stream shards")
        for column in ("shard", "open", "lag (ms behind latest)", "consumer"):
            shard_table.add_column(column)
        for shard in report.get("shards", []):
            shard_lag = lag.get(shard["shard_id"])
            reading = f"[red]STOPPED: {stopped[shard['shard_id']]}[/]" if shard["shard_id"] in stopped else "ok"
            shard_table.add_row(shard["shard_id"], str(shard["open"]), "-" if shard_lag is None else f"{shard_lag:.0f}",
                                reading)
        console.print(shard_table)
    if report.get("consumer", {}).get("ready") is False:
        err.print(f"[red]consumer not ready[/]: {len(report['consumer']['stopped_shards'])} stopped shard(s); "
                  "they resume after the cooldown or a restart of the consumer")
    for key in ("shards_error", "lag_error", "consumer_error", "jobs_error"):
        if key in report:
            err.print(f"[yellow]{key.replace('_', ' ')}[/]: {report[key]}")
    jobs = Table(title="ingest jobs")
    for column in ("state", "jobs", "accepted", "rejected", "committed"):
        jobs.add_column(column)
    for state, row in sorted(report.get("jobs", {}).items()):
        jobs.add_row(state, str(row["jobs"]), str(row["accepted"]), str(row["rejected"]), str(row["committed"]))
    console.print(jobs)
    tables = Table(title="Iceberg tables")
    for column in ("table", "last snapshot", "committed at", "rows", "snapshots"):
        tables.add_column(column)
    for name, snap in report["tables"].items():
        if snap is None:
            tables.add_row(name, "-", "no snapshot yet", "-", "-")
        elif "error" in snap:
            tables.add_row(name, "[red]error[/]", snap["error"][:60], "-", "-")
        else:
            tables.add_row(name, str(snap["snapshot_id"]), _when(snap["timestamp_ms"]), str(snap["total_records"]),
                           str(snap["snapshots"]))
    console.print(tables)
    transform = report.get("transform")
    if transform:
        steps = ", ".join(f"{s['step']}: {'ok' if s['exit_code'] == 0 else 'FAILED'}" for s in transform["steps"])
        console.print(f"last transform + quality run: {_when(int(transform['finished_at'] * 1000))} — {steps} "
                      f"(runs: {transform['runs']}; results in {StatePaths.at(state_dir).quality})")
    else:
        console.print("last transform + quality run: none yet")
    print_freshness(report.get("freshness"))


def print_freshness(freshness: dict[str, Any] | None) -> None:
    """One line per raw table with a freshness check: its status against the thresholds, newest row, age."""
    if not freshness:
        console.print("source freshness: not checked yet")
        return
    for source in freshness["sources"]:
        age = source.get("age_seconds")
        colour = {"pass": "green", "warn": "yellow"}.get(source["status"], "red")
        console.print(f"source freshness of {source['source']}: [{colour}]{source['status']}[/] — newest row "
                      f"{source.get('max_loaded_at') or '-'}"
                      + ("" if age is None else f", {age / 60:.0f} min old")
                      + f" (warn after {freshness['warn_after_minutes']} min, error after "
                        f"{freshness['error_after_minutes']} min; checked {freshness['checked_at']})")


def _attach_models(connection: Any, path: Path, timeout: float) -> None:
    """Attach dbt's models; dbt holds the file's write lock during a build (up to a minute or two on a busy
    machine), so wait for it, visibly, then give up with exit 1 rather than run the query without the models."""
    import duckdb

    try:
        catalog.attach_models(connection, path)
        return
    except duckdb.IOException:
        pass
    started = time.monotonic()
    with waiting(err, "dbt is writing warehouse.duckdb (a build is running); waiting for its lock") as update:
        while time.monotonic() - started < timeout:
            time.sleep(0.5)
            try:
                catalog.attach_models(connection, path)
                return
            except duckdb.IOException:
                update(f"{time.monotonic() - started:.0f}s")
    err.print(f"[red]dbt's warehouse.duckdb stayed locked for {timeout:.0f}s[/] (a dbt build is running: "
              "try again, or raise --lock-timeout)")
    raise typer.Exit(ExitCode.TIMEOUT)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="DuckDB SQL over raw_events, raw_events_rejected and warehouse.*")],
    state_dir: StateDir = DEFAULT_STATE,
    limit: Annotated[int, typer.Option(min=1, help="Rows to print at most.")] = 50,
    out: OutputOption = output.Output.table,
    lock_timeout: Annotated[float, typer.Option(help="Seconds to wait while dbt holds warehouse.duckdb's lock.")]
    = 180.0,
) -> None:
    """Run DuckDB SQL over the Iceberg tables (scanned with pyiceberg) and dbt's models; print the rows.

    Views: raw_events, raw_events_rejected; the dbt models are in the attached database `warehouse`
    (e.g. warehouse.marts.fact_events). Works on a stopped stack too (it reads the state folder's files).
    """
    import duckdb

    info = read_json(StatePaths.at(state_dir).stack) or {}
    settings = catalog.settings_for(state_dir, info.get("config", {}).get("namespace"))
    connection = duckdb.connect()
    try:
        catalog.register_tables(connection, settings)
        _attach_models(connection, StatePaths.at(state_dir).duckdb, lock_timeout)
        result = connection.execute(sql)
        columns = [d[0] for d in result.description or []]
        rows = result.fetchmany(limit + 1)
    except duckdb.Error as exc:
        err.print(f"[red]query failed[/]: {exc}", markup=True, highlight=False)
        raise typer.Exit(ExitCode.FAILED) from exc
    finally:
        connection.close()
    truncated = len(rows) > limit
    if out is output.Output.json:
        typer.echo(output.query_json(columns, rows[:limit], truncated))
        return
    if out is output.Output.csv:
        typer.echo(output.query_csv(columns, rows[:limit]), nl=False)
        if truncated:
            err.print(f"(first {limit} rows; --limit shows more)")
        return
    table = Table(*columns)
    for row in rows[:limit]:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    console.print(table)
    if truncated:
        console.print(f"(first {limit} rows)")


@app.command("wait")
def wait_for(
    state_dir: StateDir = DEFAULT_STATE,
    modelled: Annotated[bool, typer.Option("--modelled", help="Also wait for dbt + GX on the latest snapshot.")]
    = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 300.0,
) -> None:
    """Wait until the stack is up (and, with --modelled, until dbt + GX ran on the tables' latest snapshot)."""
    paths = StatePaths.at(state_dir)
    deadline = time.monotonic() + timeout
    what = "waiting for the stack" + (" and for dbt + GX on the latest snapshot" if modelled else "")
    with waiting(err, what) as update:
        while time.monotonic() < deadline:
            info = read_json(paths.stack)
            up_now, detail = background.stack_ready(info)
            update(detail if info is not None else f"no stack.json in {paths.root} yet")
            if up_now and info is not None:
                if not modelled:
                    console.print("stack is up")
                    return
                settings = catalog.settings_for(state_dir, info["config"].get("namespace"))
                transform = read_json(paths.transform)
                current = catalog.fingerprint(settings)
                if current is not None and transform is not None and transform.get("snapshot") == current:
                    verdict = "ok" if transform["ok"] else "with failures: " + ", ".join(
                        s["step"] for s in transform["steps"] if s["exit_code"] != 0)
                    console.print(f"modelled snapshot {current} ({verdict})")
                    return
                update("no snapshot yet" if current is None else f"snapshot {current} waits for dbt + GX")
            time.sleep(1.0)
    err.print(f"[red]timed out after {timeout:.0f}s[/] (see {paths.logs})")
    raise typer.Exit(ExitCode.TIMEOUT)


def _complete_component(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of `logs COMPONENT`: the logs of the state folder given so far (or the default)."""
    state = ctx.params.get("state_dir") or os.environ.get("EVENTPIPE_STATE_DIR") or DEFAULT_STATE
    return [name for name in logfiles.components(StatePaths.at(state)) if name.startswith(incomplete)]


@app.command()
def logs(
    component: Annotated[str | None, typer.Argument(
        help="One component's log (kinesalite, consumer, ingest, transform, prometheus, dashboard, up); "
             "all of them, prefixed by name, when omitted.", autocompletion=_complete_component)] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the stack stops "
                                         "(or Ctrl-C).")] = False,
    tail_lines: Annotated[int, typer.Option("--tail", help="Lines of each log to print first (-1: all of them).")]
    = -1,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Print the local stack's logs (<state>/logs/<component>.log), like `kubectl logs [-f]`."""
    paths = StatePaths.at(state_dir)
    found = logfiles.components(paths)
    if not found:
        err.print(f"[red]no logs in {paths.logs}[/]: start a stack with `eventpipe up`")
        raise typer.Exit(ExitCode.NO_STACK)
    if component is not None and component not in found:
        err.print(f"[red]no log for {component!r}[/]; there are: {', '.join(found)}")
        raise typer.Exit(ExitCode.USAGE)
    chosen = {component: found[component]} if component is not None else found
    prefixed = component is None

    def emit(name: str, line: str) -> None:
        sys.stdout.write(f"[{name}] {line}\n" if prefixed else f"{line}\n")

    offsets = {}
    for name, path in chosen.items():
        lines, offsets[name] = logfiles.last_lines(path, None if tail_lines < 0 else tail_lines)
        for line in lines:
            emit(name, line)
    sys.stdout.flush()
    if not follow:
        return

    def stack_running() -> bool:
        sys.stdout.flush()
        info = read_json(paths.stack)
        return info is not None and pid_alive(info.get("pid"))

    try:
        logfiles.follow(logfiles.Follower(offsets, chosen), emit, stack_running)
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    sys.stdout.flush()


@app.command()
def where(state_dir: StateDir = DEFAULT_STATE) -> None:
    """Where to look: the running stack's URLs, files and commands to try (also printed by `up`)."""
    paths = StatePaths.at(state_dir)
    typer.echo(render(where_to_look(_stack_info(state_dir), paths.root, eventpipe_command())))


@app.command()
def bench(
    duration: Annotated[float, typer.Option(help="Seconds of sustained load.")] = 60.0,
    rate: Annotated[float, typer.Option(help="Offered events per second.")] = 10_000.0,
) -> None:
    """Run benchmark W3 (sustained load into a fresh local stack; results for docs/benchmarks.md)."""
    root = locations.repo_root()
    code = subprocess.call([sys.executable, "-m", "bench.w3", "--duration", str(duration), "--rate", str(rate)],
                           cwd=root)
    raise typer.Exit(code)
