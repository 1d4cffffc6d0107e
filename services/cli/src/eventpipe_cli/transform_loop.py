"""The local stack's stand-in for the Airflow DAG: after each new snapshot, `dbt build` then the GX suites.

Runs as a child of `eventpipe up` in the services venv; the transform and quality commands run in the analytics
venv (their pins clash with the services'). Each run is recorded in `<state>/transform.json`, which `status`
and `wait --modelled` read. A critical GX failure is an alert: logged and recorded, and the loop goes on.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventpipe_common.logging import configure_logging, get_logger

from eventpipe_cli.catalog import fingerprint, settings_for
from eventpipe_cli.quality_metrics import TransformMetrics, latest_suite_runs
from eventpipe_cli.state import StatePaths, read_json, write_json
from eventpipe_cli.supervisor import should_transform

STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("dbt build", ("-m", "eventpipe_transform", "build")),
    ("quality staging", ("-m", "eventpipe_quality", "run", "--suite", "staging")),
    ("quality marts", ("-m", "eventpipe_quality", "run", "--suite", "marts")),
)


@dataclass
class Loop:
    paths: StatePaths
    analytics_python: Path
    interval: float
    settle: float = 0.0
    metrics: TransformMetrics | None = None
    stopping: bool = False
    current: subprocess.Popen[bytes] | None = None

    def run_step(self, name: str, args: tuple[str, ...]) -> dict[str, Any]:
        started = time.monotonic()
        try:
            self.current = subprocess.Popen([str(self.analytics_python), *args, "--state-dir", str(self.paths.root)],
                                            start_new_session=True, stdin=subprocess.DEVNULL)
        except OSError as exc:
            get_logger().error("cannot start the analytics step; create the venv with `scripts/venv.sh analytics`",
                               step=name, python=str(self.analytics_python), error=str(exc))
            return {"step": name, "exit_code": 127, "seconds": 0.0}
        code = self.current.wait()
        self.current = None
        return {"step": name, "exit_code": code, "seconds": round(time.monotonic() - started, 2)}

    def run_once(self, snapshot: str) -> dict[str, Any]:
        log = get_logger()
        started = time.time()
        steps: list[dict[str, Any]] = []
        for name, args in STEPS:
            if self.stopping:
                break
            result = self.run_step(name, args)
            steps.append(result)
            if result["exit_code"] != 0:
                level = log.error if name == "dbt build" else log.warning
                level("transform step failed", step=name, exit_code=result["exit_code"],
                      alert=name.startswith("quality"))
                if name == "dbt build" and result["exit_code"] != 1:
                    break  # 2: the build could not start (e.g. no table yet); 1: some models/tests failed
        previous = read_json(self.paths.transform) or {}
        finished = time.time()
        record: dict[str, Any] = {
            "snapshot": snapshot, "started_at": started, "finished_at": finished,
            "ok": all(s["exit_code"] == 0 for s in steps) and len(steps) == len(STEPS),
            "dbt_ok": bool(steps) and steps[0]["exit_code"] == 0,
            "quality_ok": len(steps) == len(STEPS) and all(s["exit_code"] == 0 for s in steps[1:]),
            "steps": steps, "runs": int(previous.get("runs", 0)) + 1,
        }
        write_json(self.paths.transform, record)
        self.publish_metrics(record)
        log.info("transform run finished", snapshot=snapshot, ok=record["ok"],
                 seconds=round(finished - started, 2))
        return record

    def publish_metrics(self, record: dict[str, Any] | None) -> None:
        if self.metrics is None:
            return
        if record is not None:
            self.metrics.record_run(record)
        try:
            self.metrics.update_quality(latest_suite_runs(self.paths.quality / "results.duckdb"))
        except Exception as exc:  # noqa: BLE001 (results file mid-write: the next run refreshes the gauges)
            get_logger().warning("could not read the quality results", error=str(exc))

    def serve(self, namespace: str | None) -> None:
        log = get_logger()
        settings = settings_for(self.paths.root, namespace)
        previous = read_json(self.paths.transform) or {}
        seen = previous.get("snapshot")
        self.publish_metrics(None)
        last_finished: float | None = None
        observed: str | None = None
        changed_at: float | None = None
        while not self.stopping:
            try:
                current = fingerprint(settings)
            except Exception as exc:  # noqa: BLE001 (catalog mid-write or locked: try again next round)
                log.warning("could not read the catalog", error=str(exc))
                current = None
            if current != observed:
                observed, changed_at = current, time.monotonic()
            if current and should_transform(seen, current, last_finished, time.monotonic(), self.interval,
                                            changed_at, self.settle):
                self.run_once(current)
                seen, last_finished = current, time.monotonic()
            time.sleep(1.0)

    def request_stop(self, _signum: int, _frame: Any) -> None:
        self.stopping = True
        if self.current is not None and self.current.poll() is None:
            os.killpg(self.current.pid, signal.SIGTERM)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eventpipe_cli.transform_loop")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=10.0, help="Minimum seconds between runs.")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="Seconds the tables must stay unchanged before a run (one run per burst of commits).")
    parser.add_argument("--analytics-python", type=Path, required=True)
    parser.add_argument("--namespace", default=os.environ.get("EVENTPIPE_NAMESPACE"))
    parser.add_argument("--metrics-port", type=int, default=0, help="Serve /metrics on 127.0.0.1 (0: off).")
    args = parser.parse_args(argv)
    configure_logging("transform")
    metrics = None
    if args.metrics_port:
        metrics = TransformMetrics()
        metrics.serve("127.0.0.1", args.metrics_port)
    loop = Loop(StatePaths.at(args.state_dir), args.analytics_python, args.interval, args.settle, metrics)
    signal.signal(signal.SIGTERM, loop.request_stop)
    signal.signal(signal.SIGINT, loop.request_stop)
    get_logger().info("transform loop started", interval=args.interval, settle=args.settle)
    loop.serve(args.namespace)
    get_logger().info("transform loop stopped")


if __name__ == "__main__":
    main()
