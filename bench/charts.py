"""Pictures of recorded benchmark results for docs/benchmarks.md (`make bench` redraws them after the runs).

    python -m bench.charts [--w1 PATH] [--w3 PATH] [--out docs/img]

- W1: the peer table as bars, one panel per input size and form: each job's median time per thread setting, the
  spread (min-max over the interleaved rounds) as a whisker, and its time over the project's job written beside.
- W3: the freshness distribution (seconds from a batch's 202 to the commit that made it visible) as a
  cumulative curve drawn through the recorded percentiles, with p50/p95/p99 marked.

Reads the JSON files bench.w1 and bench.w3 write (under ~/.cache/eventpipe/bench by default); a missing file is
skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

CACHE = Path(os.environ.get("EVENTPIPE_CACHE", Path.home() / ".cache" / "eventpipe")) / "bench"
ROOT = Path(__file__).resolve().parent.parent
COLORS = {"1": "#4c72b0", "default": "#dd8452"}


def w1_chart(data: dict[str, Any], out: Path) -> Path:
    """Bars of median seconds per job, one panel per (size, input form)."""
    results = [r for r in data["results"] if r["job"] not in ("read_only", "parse_simdjson", "write_only")]
    panels = sorted({(r["n"], r["job"].endswith("_csv")) for r in results})
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.2 + 0.9 * max(
        len({r["job"] for r in results if (r["n"], r["job"].endswith("_csv")) == p}) for p in panels) * len(panels)),
        squeeze=False)
    for ax, (n, is_csv) in zip(axes[:, 0], panels, strict=True):
        rows = [r for r in results if r["n"] == n and r["job"].endswith("_csv") == is_csv]
        jobs = sorted({r["job"] for r in rows},
                      key=lambda j: -min(r["median_seconds"] for r in rows if r["job"] == j))
        settings = sorted({r["threads"] for r in rows}, key=lambda t: (t != "1", t))
        height = 0.8 / len(settings)
        for k, threads in enumerate(settings):
            for i, job in enumerate(jobs):
                match = [r for r in rows if r["job"] == job and r["threads"] == threads]
                if not match:
                    continue
                r = match[0]
                med, lo, hi = r["median_seconds"], min(r["runs"]), max(r["runs"])
                y = i + (k - (len(settings) - 1) / 2) * height
                ax.barh(y, med, height=height * 0.9, color=COLORS.get(threads, "#55a868"),
                        label=f"threads={threads}" if i == 0 else None)
                ax.errorbar(med, y, xerr=[[med - lo], [hi - med]], color="black", capsize=2, linewidth=0.8)
                ratio = r.get("time_over_eventpipe")
                ax.text(hi * 1.02, y, f"{med:.2f} s" + (f"  ({ratio:.2f}x)" if ratio else ""), va="center",
                        fontsize=7)
        ax.set_yticks(range(len(jobs)))
        ax.set_yticklabels([f"{j} ({_versions(rows, j)})" for j in jobs], fontsize=7)
        ax.set_xlabel("seconds (median; whisker: min-max)")
        form = "CSV" if is_csv else "NDJSON"
        ax.set_title(f"W1, N = {n:,} events, {form}: time from file to ZSTD Parquet (lower is better)", fontsize=9)
        ax.set_xlim(0, max(max(r["runs"]) for r in rows) * 1.35)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{data.get('machine', '')}; {data.get('started', '')}", fontsize=7)
    fig.tight_layout()
    path = out / "w1-peers.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _versions(rows: list[dict[str, Any]], job: str) -> str:
    return next((r.get("versions", "") for r in rows if r["job"] == job), "")


def w3_chart(data: dict[str, Any], out: Path) -> Path:
    """The freshness distribution as a cumulative curve through the recorded percentiles."""
    percentiles: list[float] = data["freshness_percentiles_s"]
    qs = list(range(1, len(percentiles) + 1))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(percentiles, qs, color="#4c72b0")
    for q in (50, 95, 99):
        value = data["freshness_s"][f"p{q}"]
        ax.axvline(value, color="#999999", linewidth=0.7, linestyle="--")
        ax.text(value, q - 8, f" p{q} {value:.2f} s", fontsize=7)
    ax.set_xlabel("freshness: seconds from the 202 to the commit that made the events visible")
    ax.set_ylabel("% of events at most this fresh")
    ax.set_ylim(0, 100)
    ax.set_xlim(left=0)
    ax.set_title(f"W3: {data['offered_events_per_s']:,} events/s offered for {data['duration_s']} s, commit "
                 f"interval {data['commit_interval_s']} s, {data['shards']} shards", fontsize=9)
    fig.tight_layout()
    path = out / "w3-freshness.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--w1", type=Path, default=CACHE / "w1-results.json")
    parser.add_argument("--w3", type=Path, default=CACHE / "w3-results.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, path, draw in (("W1", args.w1, w1_chart), ("W3", args.w3, w3_chart)):
        if not path.exists():
            print(f"{name}: no results at {path} (run the benchmark first); chart not redrawn")
            continue
        data = json.loads(path.read_text())
        if name == "W3" and "freshness_percentiles_s" not in data:
            print(f"{name}: {path} has no freshness percentiles (recorded by an older bench.w3); not redrawn")
            continue
        print(f"{name}: {draw(data, args.out)}")


if __name__ == "__main__":
    main()
