"""Draw a soak run as one figure for the README: memory, disk and latency against hours of signal.

Usage: ``python benchmarks/plot_soak.py benchmarks/results/soak-<date>-<tag>.json [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import save_figure  # noqa: E402

FIGURE = Path(__file__).resolve().parent.parent / "docs" / "figures" / "soak.png"


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, default=FIGURE)
    args = parser.parse_args()
    report = json.loads(args.results.read_text())
    rows, s = report["rows"], report["settings"]
    hours = [r["signal_h"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(hours, [r["rss_mb"] for r in rows], marker="o")
    axes[0].set(title="bridge resident memory", ylabel="MB", ylim=(0, None))
    axes[1].plot(hours, [r["db_mb"] for r in rows], marker="o", label="SQLite")
    axes[1].plot(hours, [r["wal_mb"] for r in rows], marker="o", label="WAL")
    axes[1].plot(hours, [r["jsonl_mb"] for r in rows], marker="o", label="JSON lines (all files)")
    axes[1].set(title=f"disk ({s['keep_hours']:g} h kept, JSON lines rotated)", ylabel="MB")
    axes[1].legend(fontsize=8)
    axes[2].plot(hours, [r["latency_ms"]["p50"] for r in rows], marker="o", label="p50")
    axes[2].plot(hours, [r["latency_ms"]["p99"] for r in rows], marker="o", label="p99")
    axes[2].set(title="latency of the beats since the last point", ylabel="ms", ylim=(0, None))
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("hours of signal")
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"{s['boards']} board(s), MIT-BIH 208 for {s['hours']:g} h at {s['speed']:g}x, replugged every 30 min",
        fontsize=10,
    )
    save_figure(fig, args.out)


if __name__ == "__main__":
    main()
