"""Draw the latency results as one figure for the README.

Reads ``benchmarks/results/latency-<date>.json`` and ``stream-<date>.json``
(the newest of each, or ``--date``) and writes ``docs/figures/latency.png``:
single-beat scoring latency per backend, and the bridge's end-to-end latency
against the number of boards.

Usage: ``python benchmarks/plot_latency.py [--date YYYY-MM-DD] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from results_file import RESULTS, save_figure

FIGURE = Path(__file__).resolve().parent.parent / "docs" / "figures" / "latency.png"


def newest(kind: str, date: str | None) -> Path:
    """The results file of ``kind`` for ``date``, or the newest one."""
    if date:
        return RESULTS / f"{kind}-{date}.json"
    files = sorted(RESULTS.glob(f"{kind}-????-??-??.json"))
    if not files:
        raise SystemExit(f"no {kind} results in {RESULTS}: run benchmarks/{kind}.py first")
    return files[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--date", default=None, help="Results date (default: the newest).")
    parser.add_argument("--out", type=Path, default=FIGURE)
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latency = json.loads(newest("latency", args.date).read_text())
    stream = json.loads(newest("stream", args.date).read_text())
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))

    names = list(latency["cpu"])
    p50 = [latency["cpu"][n]["single_beat"]["p50_ms"] for n in names]
    p99 = [latency["cpu"][n]["single_beat"]["p99_ms"] for n in names]
    x = range(len(names))
    left.bar([i - 0.2 for i in x], p50, 0.4, label="p50")
    left.bar([i + 0.2 for i in x], p99, 0.4, label="p99")
    for i, value in enumerate(p50):
        left.annotate(
            f"{p50[0] / value:.1f}x",
            (i - 0.2, value),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize=8,
        )
    left.set_xticks(list(x), [n.replace(" ", "\n", 1) for n in names], fontsize=8)
    left.set(ylabel="ms per beat", title=f"Scoring one beat, 1 thread ({latency['date'][:10]})")
    left.legend(fontsize=8)

    runs = [("latency", 1)] + sorted(
        ((k, v["summary"]["boards"]) for k, v in stream["runs"].items() if k.startswith("capacity")), key=lambda r: r[1]
    )
    boards = [n for _, n in runs]
    for pct, style in (("p50", "o-"), ("p99", "s-")):
        right.plot(boards, [stream["runs"][k]["summary"]["latency_ms"][pct] for k, _ in runs], style, label=pct)
    right.axhline(20, color="k", ls=":", lw=1, label="20 ms target (p99)")
    right.set_yscale("log")
    right.set(
        xlabel="boards at 360 Hz, real time, one bridge process",
        ylabel="ms, last sample in -> row committed",
        title=f"Bridge end-to-end latency ({stream['environment']['date'][:10]})",
    )
    right.legend(fontsize=8)
    fig.suptitle(
        f"{stream['environment']['cpus']}-CPU machine, INT8 shipped model; every frame arrived at every board count",
        fontsize=9,
    )
    save_figure(fig, args.out)


if __name__ == "__main__":
    main()
