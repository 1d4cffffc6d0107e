"""The maintenance of bench/freshness.py: the consumer's table maintenance in a loop beside the writers.

    python -m bench.freshness_maintenance --every 30 --housekeeping-every 10 --out DIR [--min-age-seconds 20]
        [--quiet-seconds 3600]

What the operator's CronJob runs (`python -m eventpipe_consumer maintenance`: compaction, snapshot expiry that
keeps the checkpoint chain, orphan removal), called in one long-lived process instead of a new pod each time, in
two loops of their own: compaction every `--every` seconds, and expiry + orphan removal ("housekeeping") every
`--housekeeping-every` seconds in a thread, so a slow compaction pass does not let snapshots, manifests and
orphans pile up (with `--housekeeping-every 0`, one loop does all three, as before). Settings come from the same
EVENTPIPE_* variables as the consumer's (the caller passes the stack's environment plus the EVENTPIPE_MAINTENANCE_*
values of the run). Each pass appends one JSON line to DIR/maintenance.jsonl: its kind (compaction, housekeeping
or all), the reports, how long it took, or the error it ended with (the loop goes on).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import IO

from eventpipe_consumer.maintenance import run_maintenance
from eventpipe_consumer.settings import ConsumerSettings

stopping = False


def _stop(_signum: int, _frame: object) -> None:
    global stopping
    stopping = True


def loop(kind: str, every: float, skip: set[str], args: argparse.Namespace, settings: ConsumerSettings,
         out: IO[str], lock: threading.Lock) -> None:
    """Run maintenance (minus `skip`) every `every` seconds until stopped; one JSON line a pass."""
    while not stopping:
        started = time.time()
        row: dict[str, object] = {"t": started, "kind": kind}
        try:
            reports = run_maintenance(settings, tables=["raw_events"], skip=skip,
                                      quiet_seconds=args.quiet_seconds, min_age_seconds=args.min_age_seconds)
            row["reports"] = [r.to_dict() | {"orphans_deleted": len(r.orphans_deleted)} for r in reports]
        except Exception as error:  # noqa: BLE001  # recorded: the benchmark reports failed passes
            row["error"] = f"{type(error).__name__}: {error}"
        row["seconds"] = round(time.time() - started, 3)
        with lock:
            out.write(json.dumps(row) + "\n")
            out.flush()
        deadline = started + every
        while not stopping and time.time() < deadline:
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.freshness_maintenance")
    parser.add_argument("--every", type=float, default=30.0)
    parser.add_argument("--housekeeping-every", type=float, default=10.0,
                        help="expiry and orphan removal in their own loop this often (0: in the compaction pass)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quiet-seconds", type=float, default=3600.0)
    parser.add_argument("--min-age-seconds", type=float, default=None,
                        help="also compact files of partitions still written, once committed this long ago")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    settings = ConsumerSettings()  # type: ignore[call-arg]  # fields come from EVENTPIPE_* variables
    lock = threading.Lock()
    with open(args.out / "maintenance.jsonl", "a") as out:
        if args.housekeeping_every <= 0:
            loop("all", args.every, set(), args, settings, out, lock)
            return 0
        housekeeping = threading.Thread(target=loop, args=("housekeeping", args.housekeeping_every,
                                                           {"compact"}, args, settings, out, lock))
        housekeeping.start()
        loop("compaction", args.every, {"expire", "orphans"}, args, settings, out, lock)
        housekeeping.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
