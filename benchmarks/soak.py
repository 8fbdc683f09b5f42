"""Soak: boards left on for days, played fast, into one bridge with retention; what grows and what stays flat.

N virtual boards (``ecgedge.firmware_bridge.simulator``, in a forked process) each play MIT-BIH 208
(or the bundled 100) back to back for ``--hours`` of signal at ``--speed`` times real time, over TCP
(``socket://``), unplugged and replugged once per play (30 min of signal), into one :class:`Hub` here
with an SQLite database and a rotating JSON lines file, both with retention. Every ``--every`` hours
of signal it records the bridge process's resident memory (RSS) and open files, the database and
write-ahead log sizes, the JSON lines files' total size, the beats the database holds, the
messages waiting in the hub's queue, the machine's load average, and the latency p50 / p99 of
the beats committed since the last record (the bridge's own histogram).

At S times real time the board's sample clock runs S times faster than the host's, and the bridge
stamps beats with host time, so ``--keep-hours`` hours of signal are kept as ``--keep-hours / S``
hours of beat time.

    python benchmarks/soak.py --boards 1 --hours 48 --speed 200
    python benchmarks/soak.py --boards 16 --hours 4 --speed 12
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sqlite3
import sys
import time
import tracemalloc
from contextlib import closing
from pathlib import Path

import numpy as np

from ecgedge.firmware_bridge.hub import Hub
from ecgedge.firmware_bridge.settings import BridgeSettings, Judging
from ecgedge.firmware_bridge.simulator import TcpEndpoint, VirtualBoard, run_boards
from ecgedge.firmware_bridge.sinks import JsonlSink, SqliteSink
from ecgedge.runtime import load_scorer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mitdb import default_directory  # noqa: E402
from results_file import machine, write_results  # noqa: E402
from stream import start_hub  # noqa: E402

PLAY_S = 1800.0  # MIT-BIH records are 30 minutes


def _record_path() -> Path | None:
    path = default_directory() / "208"
    return path if path.with_suffix(".hea").exists() else None


def _play(n: int, hours: float, speed: float, out: mp.Queue) -> None:
    """The boards' side: ``n`` boards playing the record for ``hours``, replugged once per play."""
    repeat = int(np.ceil(hours * 3600 / PLAY_S))
    boards = [(VirtualBoard.from_record(_record_path(), repeat=repeat, seed=i), TcpEndpoint()) for i in range(n)]
    out.put([endpoint.url for _, endpoint in boards])
    try:
        run_boards(boards, speed=speed, disconnect_every=PLAY_S / speed, downtime=0.05, wait_reader=60)
        time.sleep(2.0)
    finally:
        for _, endpoint in boards:
            endpoint.close()
    out.put([board.stats.as_dict() for board, _ in boards])


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _size_mb(*paths: Path) -> float:
    return sum(p.stat().st_size for p in paths if p.exists()) / 2**20


def soak(args: argparse.Namespace, work: Path) -> dict:
    ctx = mp.get_context("fork")  # forked before the hub starts any thread
    out = ctx.Queue()
    player = ctx.Process(target=_play, args=(args.boards, args.hours, args.speed, out))
    player.start()
    hub = Hub(load_scorer(args.bundle, precision="int8", threads=1), BridgeSettings(judging=Judging.adapt(300.0)))
    for i, url in enumerate(out.get()):
        hub.add_board(url, name=f"bed{i + 1}")
    db, jsonl = work / "beats.db", work / "beats.jsonl"
    keep_s = args.keep_hours * 3600 / args.speed
    hub.sinks += [
        SqliteSink(db, hub.fs_of, keep_beats_s=keep_s, keep_events_s=4 * keep_s),
        JsonlSink(jsonl, max_bytes=round(args.jsonl_mb * 2**20), backups=args.jsonl_backups),
    ]
    signal_s = [0.0]  # the newest beat's signal time, any board

    def seen(scored) -> None:
        signal_s[0] = max([signal_s[0]] + [s.beat.sample / 360.0 for s in scored])

    hub.on_beats = seen
    runner, stop, result, escaped = start_hub(hub)
    rows, mark, next_at, heap = [], hub.writer.latencies.snapshot(), 0.0, None
    while player.is_alive() or not out.empty():
        time.sleep(0.5)
        if signal_s[0] < next_at:
            if not player.is_alive():
                break
            continue
        since, mark = hub.writer.latencies.since(mark), hub.writer.latencies.snapshot()
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as reader:  # read-only, beside the hub's writer
            held = reader.execute("SELECT COUNT(*) FROM beats").fetchone()[0]
        rows.append(
            {
                "signal_h": signal_s[0] / 3600,
                "wall_s": time.time() - args.started,
                "rss_mb": _rss_mb(),
                "open_files": len(os.listdir("/proc/self/fd")),
                "db_mb": _size_mb(db),
                "wal_mb": _size_mb(db.with_name(db.name + "-wal")),
                "jsonl_mb": _size_mb(*work.glob("beats.jsonl*")),
                "beats_held": held,
                "beats": hub.writer.beats,
                "queued": hub.queued,
                "load_1min": os.getloadavg()[0],
                "latency_ms": since.summary_ms(),
            }
        )
        print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
        next_at = (int(signal_s[0] / 3600 / args.every) + 1) * args.every * 3600
        if args.tracemalloc and heap is None and signal_s[0] >= 3600:  # after the first hour: what grows from then on
            heap = tracemalloc.take_snapshot()
    board_stats = out.get()
    player.join()
    hub.wait_until_quiet(quiet=1.0, timeout=60)
    stop.set()
    runner.join()
    summary = result or hub.summary()
    growth = []
    if heap is not None:
        diff = tracemalloc.take_snapshot().compare_to(heap, "lineno")
        growth = [{"where": str(d.traceback), "grew_kb": d.size_diff / 1024, "blocks": d.count_diff} for d in diff[:12]]
    keep = (
        "beats",
        "flagged",
        "frames",
        "frames_dropped",
        "frames_lost",
        "shed_samples",
        "shed_beats",
        "internal_errors",
        "events",
        "latency_ms",
    )
    return {
        "rows": rows,
        "summary": {k: summary[k] for k in keep},
        "escaped": escaped,
        "boards": board_stats,
        "heap_growth": growth,
        "jsonl_files": sorted(p.name for p in work.glob("beats.jsonl*")),
    }


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="an exported bundle (ecgedge export)")
    parser.add_argument("--boards", type=int, default=1)
    parser.add_argument("--hours", type=float, default=48.0, help="hours of signal each board plays")
    parser.add_argument("--speed", type=float, default=200.0, help="times real time")
    parser.add_argument("--every", type=float, default=1.0, help="hours of signal between records")
    parser.add_argument("--keep-hours", type=float, default=6.0, help="hours of signal the database keeps")
    parser.add_argument("--jsonl-mb", type=float, default=16.0, help="JSON lines file size that rotates it")
    parser.add_argument("--jsonl-backups", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("build/soak"))
    parser.add_argument(
        "--tracemalloc", action="store_true", help="list the Python allocations that grew after the first hour"
    )
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    if args.tracemalloc:
        tracemalloc.start()
    args.started = time.time()
    work = args.work / f"{args.boards}x{args.hours:g}h"
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("beats.*"):
        old.unlink()
    report = {
        "machine": machine(numpy=np.__version__),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        **soak(args, work),
    }
    report["seconds"] = time.time() - args.started
    text = markdown(report)
    write_results("soak", report, text, tag=args.tag or f"{args.boards}x{args.hours:g}h")
    print(text)


def markdown(r: dict) -> str:
    m, s, sm = r["machine"], r["settings"], r["summary"]
    lines = [
        f"Soak: {s['boards']} board(s), MIT-BIH 208 played back to back for {s['hours']:g} h of signal each at "
        f"{s['speed']:g}x, replugged every 30 min of signal; SQLite keeping {s['keep_hours']:g} h of signal, JSON "
        f"lines rotated at {s['jsonl_mb']:g} MB with {s['jsonl_backups']} backups; INT8 population bundle, 300 s "
        "learning.",
        f"Machine: {m['platform']}, {m['cpus']} CPUs; python {m['python']}, ecgedge {m['ecgedge']}; "
        f"{r['seconds']:.0f} s.",
        f"Totals: {sm['beats']:,} beats, {sm['flagged']:,} flagged; frames {sm['frames']:,}, dropped "
        f"{sm['frames_dropped']}, lost {sm['frames_lost']}; shed {sm['shed_samples']} samples / {sm['shed_beats']} "
        f"beats; internal errors {sm['internal_errors']}; exceptions escaped {len(r['escaped'])}; JSON lines files "
        f"{', '.join(r['jsonl_files'])}.",
        "",
        "| signal (h) | RSS (MB) | open files | database (MB) | WAL (MB) | JSON lines (MB) | beats held "
        "| messages queued | load (1 min) | latency p50 / p99 since last row (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        lat = row["latency_ms"]
        latency = "-" if lat["p50"] is None else f"{lat['p50']:.0f} / {lat['p99']:.0f}"
        lines.append(
            f"| {row['signal_h']:.1f} | {row['rss_mb']:.0f} | {row['open_files']} | {row['db_mb']:.1f} "
            f"| {row['wal_mb']:.1f} | {row['jsonl_mb']:.1f} | {row['beats_held']:,} "
            f"| {row['queued']} | {row['load_1min']:.1f} | {latency} |"
        )
    if r.get("heap_growth"):
        lines += [
            "",
            "Python allocations that grew after the first hour (tracemalloc, largest first):",
            "",
            "| where | grew (KB) | blocks |",
            "|---|---:|---:|",
        ]
        lines += [f"| `{g['where']}` | {g['grew_kb']:.0f} | {g['blocks']} |" for g in r["heap_growth"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
