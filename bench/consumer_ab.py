"""A/B of two builds of the consumer's commit path, interleaved child by child:

    python -m bench.consumer_ab A B [--rounds 7] [--events 1000000] [--variant core-packed] [--serial]

A and B are each `PYTHON[:CHECKOUT]`: the interpreter of a virtualenv (its `eventpipe_core` wheel is the core under
test) and, optionally, a checkout whose Python sources (bench/, services/*/src) go first on the path (the
virtualenvs' editable installs point at one checkout). Round r runs one `bench.consumer --child` with A, then one
with B (B first on odd rounds), so that both see the same load; a shared machine's load moves both alike. Reports
each side's events per CPU-second and events/s (medians, spread) and the per-round ratio B/A; the committed and
rejected counts must match or the comparison is void. Make a B virtualenv e.g. with `cp -a .venvs/services
/tmp/venv-b && uv pip install --python /tmp/venv-b/bin/python --reinstall --no-deps WHEEL`.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _side(spec: str) -> tuple[str, Path]:
    python, _, checkout = spec.partition(":")
    return python, Path(checkout).resolve() if checkout else REPO


def run_child(spec: str, variant: str, events: int, serial: bool) -> dict[str, Any]:
    """One `bench.consumer` child with this side's interpreter and sources."""
    python, checkout = _side(spec)
    sources = [checkout, *sorted((checkout / "services").glob("*/src"))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in sources)}
    with tempfile.TemporaryDirectory(prefix="eventpipe-bench-ab-") as tmp:
        out = subprocess.run([python, "-m", "bench.consumer", "--child", variant, "--events", str(events),
                              "--workdir", tmp, *(["--serial"] if serial else [])],
                             cwd=checkout, env=env, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--variant", default="core-packed")
    parser.add_argument("--serial", action="store_true", help="the same 50,000-event commits on both sides")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    for round_no in range(args.rounds):
        order = [("A", args.a), ("B", args.b)]
        for side, spec in order if round_no % 2 == 0 else reversed(order):
            result = run_child(spec, args.variant, args.events, args.serial)
            runs[side].append(result)
            print(json.dumps({"round": round_no, "side": side, **result}), flush=True)
    counts = {side: {(r["committed"], r["rejected"]) for r in rs} for side, rs in runs.items()}
    ratios = [b["events_per_cpu_s"] / a["events_per_cpu_s"] for a, b in zip(runs["A"], runs["B"], strict=True)]
    for side, rs in runs.items():
        print(f"{side}: events per CPU-second {_spread([r['events_per_cpu_s'] for r in rs])}, "
              f"events/s {_spread([r['events_per_s'] for r in rs])}, commits "
              f"{statistics.median(r['commits'] for r in rs):.0f}, committed/rejected {sorted(counts[side])}")
    print(f"B/A per round (events per CPU-second): median {statistics.median(ratios):.3f} "
          f"({min(ratios):.3f}-{max(ratios):.3f})" + ("" if counts["A"] == counts["B"] else "  COUNTS DIFFER"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
