"""Curves of the freshness-that-lasts run (bench/freshness.py) for docs/benchmarks.md.

    python -m bench.charts_freshness [--run bench/results/<run>] [--record docs/data/freshness-long.json]
                                     [--out docs/img/freshness-long.svg]

One picture, four panels over the minutes of the load: freshness p50 / p95 / p99 per minute (the goal's 1.0 s
p95 marked), the live data files and manifests of the current snapshot, the metadata (current metadata.json
and the whole metadata folder), and a DuckDB full scan's time with the rows it read; the load average of the
machine under every panel's time axis (the machine is shared).

With `--run`, reads a run's folder (results.json, stats.jsonl, maintenance.jsonl) and, with `--record`, writes
them as one JSON file (what docs/ keeps: the folder's per-snapshot lines are too big to commit). Without
`--run`, draws from the recorded file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "docs" / "data" / "freshness-long.json"
OUT = ROOT / "docs" / "img" / "freshness-long.svg"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_run(folder: Path) -> dict[str, Any]:
    """A run's results with its time series, as one document."""
    results: dict[str, Any] = json.loads((folder / "results.json").read_text())
    results["stats"] = _jsonl(folder / "stats.jsonl")
    results["maintenance_passes"] = [
        {"t": p["t"], "seconds": p["seconds"], "error": p.get("error"),
         "files_removed": sum(r["files_removed"] for r in p.get("reports", [])),
         "snapshots_expired": sum(r["snapshots_expired"] for r in p.get("reports", []))}
        for p in _jsonl(folder / "maintenance.jsonl")]
    results.pop("loadavg", None)  # in stats
    return results


def draw(run: dict[str, Any], out: Path) -> None:
    start = run["load_started"]
    stats = run["stats"]
    minutes = [(s["t"] - start) / 60 for s in stats]
    fig, axes = plt.subplots(4, 1, figsize=(9, 12), sharex=True)
    per_minute = run["freshness_per_minute"]
    fresh, files, meta, scan = axes
    xs = [m["minute"] + 0.5 for m in per_minute]
    for key, style in (("p50", "-"), ("p95", "-"), ("p99", "--")):
        fresh.plot(xs, [m[key] for m in per_minute], style, marker=".", label=key)
    fresh.axhline(1.0, color="red", linewidth=0.8, label="goal: p95 1.0 s")
    fresh.set_ylabel("freshness (s)\n202 → visible commit")
    command = run["command"].split(" --out ")[0].removeprefix("python -m ")
    fresh.set_title(f"{command}  ({run['started_utc']}, git {run['git']})", fontsize=8)
    fresh.legend(loc="upper left", fontsize=8)
    files.plot(minutes, [s["live_data_files"] for s in stats], marker=".", label="live data files")
    files.plot(minutes, [s["manifests"] for s in stats], marker=".", label="manifests (current snapshot)")
    files.plot(minutes, [s["snapshots"] for s in stats], marker=".", label="snapshots kept")
    files.set_ylabel("count")
    files.legend(loc="upper left", fontsize=8)
    meta.plot(minutes, [s["metadata_json_bytes"] / 1e6 for s in stats], marker=".", label="metadata.json (MB)")
    meta.plot(minutes, [s["metadata_folder_bytes"] / 1e6 for s in stats], marker=".",
              label="metadata folder (MB)")
    meta.set_ylabel("MB")
    meta.legend(loc="upper left", fontsize=8)
    scan.plot(minutes, [s["scan_s"] for s in stats], marker=".", color="C0", label="DuckDB full scan (s)")
    scan.set_ylabel("scan (s), 1 thread")
    rows = scan.twinx()
    rows.plot(minutes, [s["scan_rows"] / 1e6 for s in stats], color="C1", linestyle=":", label="rows (M)")
    rows.set_ylabel("rows scanned (M)")
    scan.legend(loc="upper left", fontsize=8)
    rows.legend(loc="lower right", fontsize=8)
    for ax in axes:
        load = ax.twinx() if ax is not scan else None
        if load is not None:
            load.plot(minutes, [s["loadavg"][0] for s in stats], color="grey", alpha=0.35, linewidth=1)
            load.set_ylabel("load avg (1 min), 2 cores", color="grey", fontsize=7)
            load.tick_params(axis="y", colors="grey", labelsize=7)
        ax.axvline(run["settings"]["baseline"] / 60, color="black", linewidth=0.6, linestyle=":")
        ax.grid(alpha=0.3)
    scan.set_xlabel("minutes since the load started (dotted: end of the baseline)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.charts_freshness")
    parser.add_argument("--run", type=Path, help="a results folder of bench/freshness.py")
    parser.add_argument("--record", type=Path, help="write the run as one JSON file here")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.run is not None:
        run = load_run(args.run)
        if args.record is not None:
            args.record.parent.mkdir(parents=True, exist_ok=True)
            args.record.write_text(json.dumps(run, indent=1) + "\n")
    elif RECORD.exists():
        run = json.loads(RECORD.read_text())
    else:
        print(f"no run given and no recorded run at {RECORD}: nothing to draw")
        return 0
    draw(run, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
