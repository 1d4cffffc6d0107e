"""The maintenance of bench/freshness.py: the consumer's table maintenance in a loop beside the writers.

    python -m bench.freshness_maintenance --every 30 --out DIR [--min-age-seconds 20] [--quiet-seconds 3600]

What the operator's CronJob runs (`python -m eventpipe_consumer maintenance`: compaction, snapshot expiry that
keeps the checkpoint chain, orphan removal), called in one long-lived process every `--every` seconds instead of
a new pod each time. Settings come from the same EVENTPIPE_* variables as the consumer's (the caller passes the
stack's environment plus the EVENTPIPE_MAINTENANCE_* values of the run). Each pass appends one JSON line to
DIR/maintenance.jsonl: the reports, how long it took, or the error it ended with (the loop goes on).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from eventpipe_consumer.maintenance import run_maintenance
from eventpipe_consumer.settings import ConsumerSettings

stopping = False


def _stop(_signum: int, _frame: object) -> None:
    global stopping
    stopping = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.freshness_maintenance")
    parser.add_argument("--every", type=float, default=30.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quiet-seconds", type=float, default=3600.0)
    parser.add_argument("--min-age-seconds", type=float, default=None,
                        help="also compact files of partitions still written, once committed this long ago")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    settings = ConsumerSettings()  # type: ignore[call-arg]  # fields come from EVENTPIPE_* variables
    with open(args.out / "maintenance.jsonl", "a") as out:
        while not stopping:
            started = time.time()
            row: dict[str, object] = {"t": started}
            try:
                reports = run_maintenance(settings, tables=["raw_events"], skip=set(),
                                          quiet_seconds=args.quiet_seconds, min_age_seconds=args.min_age_seconds)
                row["reports"] = [r.to_dict() | {"orphans_deleted": len(r.orphans_deleted)} for r in reports]
            except Exception as error:  # noqa: BLE001  # recorded: the benchmark reports failed passes
                row["error"] = f"{type(error).__name__}: {error}"
            row["seconds"] = round(time.time() - started, 3)
            out.write(json.dumps(row) + "\n")
            out.flush()
            deadline = started + args.every
            while not stopping and time.time() < deadline:
                time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
