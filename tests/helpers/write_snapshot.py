"""Commits shop events to a state dir's Iceberg tables as the consumer does; run with the analytics venv's python
(it has the Rust core), from the repository root: `python -m tests.helpers.write_snapshot STATE_DIR COUNT SEED`.
Prints the new raw_events snapshot id.

Reuses tests/helpers/pipeline_writer.py (core batch processing + pyiceberg append) and the CLI's sample generator.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

from tests.helpers.pipeline_writer import PipelineWriter

ROOT = Path(__file__).resolve().parents[2]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("generator", ROOT / "services/cli/src/eventpipe_cli/generator.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generator"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    state_dir, count, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    gen = _generator()
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    config = gen.GeneratorConfig(seed=seed, users=20, products=8, start=start)
    events = [__import__("json").loads(line.text) for line in gen.generate(config, count)]
    writer = PipelineWriter(state_dir)
    writer.commit(events, dt.datetime.now(dt.UTC))
    snapshot = writer.catalog.load_table("shop.raw_events").current_snapshot()
    print(snapshot.snapshot_id if snapshot is not None else "")


if __name__ == "__main__":
    main()
