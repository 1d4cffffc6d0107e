"""`python -m eventpipe_consumer run` (the consumer loop) and `python -m eventpipe_consumer maintenance ...`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from eventpipe_common.logging import configure_logging

from eventpipe_consumer.settings import ConsumerSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eventpipe_consumer")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="consume the stream into Iceberg until SIGTERM")
    maint = commands.add_parser("maintenance", help="compact, expire snapshots, delete orphan files")
    maint.add_argument("--table", action="append", choices=["raw_events", "raw_events_rejected"],
                       help="table(s) to maintain (default: both)")
    maint.add_argument("--skip", action="append", default=[], choices=["compact", "expire", "orphans"])
    maint.add_argument("--quiet-seconds", type=float, default=3600.0,
                       help="compact only partitions no commit touched for this long")
    maint.add_argument("--min-age-seconds", type=float, default=None,
                       help="also compact the files of partitions still written, once committed this long ago")
    args = parser.parse_args(argv)
    settings = ConsumerSettings()  # type: ignore[call-arg]  # fields come from EVENTPIPE_* variables
    if args.command == "run":
        from eventpipe_consumer.app import run_consumer

        asyncio.run(run_consumer(settings))
        return 0
    from eventpipe_consumer.maintenance import run_maintenance

    configure_logging("consumer", settings.log_level)
    reports = run_maintenance(settings, tables=args.table or ["raw_events", "raw_events_rejected"],
                              skip=set(args.skip), quiet_seconds=args.quiet_seconds,
                              min_age_seconds=args.min_age_seconds)
    json.dump([report.to_dict() for report in reports], sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
