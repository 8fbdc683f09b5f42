"""Streaming benchmark of the firmware bridge: accuracy, latency, capacity, faults, replug.

Virtual boards (``ecgedge.firmware_bridge.simulator``) run in a separate
process, over real ptys or a TCP socket; the bridge (one :class:`Hub`) runs
here. Writes ``benchmarks/results/stream-<date>.json`` and ``.md``.

Runs:
- ``accuracy``: all 30 min of MIT-BIH 100 (MLII), fast, Se / +P against the
  reference beats (wfdb ``compare_annotations``, 150 ms).
- ``latency``: one board in real time; latency = last sample of a beat's
  window read from the port -> its row committed to SQLite (WAL).
- ``capacity-N``: N boards (``--boards``, default 60 100 200) at 360 Hz in
  real time over ptys, one bridge process, SQLite commits per micro-batch;
  every frame must arrive and latency must stay low for N to be sustained.
- ``faults``: the full record with bit errors (1e-4 per byte) and 0.1 % frame drops.
- ``replug``: a socket board unplugged every 5 s for 0.5 s.

Usage: ``python benchmarks/stream.py [--bundle DIR] [--boards 200] [--seconds 60]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from results_file import write_results

from ecgedge.datasets import load_wfdb_record
from ecgedge.firmware_bridge.hub import Hub
from ecgedge.firmware_bridge.simulator import (
    PtyEndpoint,
    TcpEndpoint,
    VirtualBoard,
    run_boards,
)
from ecgedge.firmware_bridge.sinks import SqliteSink
from ecgedge.runtime import load_scorer


def _play(make_boards, kwargs, out: mp.Queue) -> None:
    """The board side, in its own process: make boards and endpoints, say where, play."""
    boards = make_boards()
    out.put([getattr(endpoint, "path", None) or endpoint.url for _, endpoint in boards])
    try:
        run_boards(boards, **kwargs)
        time.sleep(1.0)  # let the bridge read the last bytes before the ports go
    finally:
        for _, endpoint in boards:
            endpoint.close()
    out.put([board.stats.as_dict() for board, _ in boards])


def run(scorer, make_boards, db: Path, **kwargs) -> tuple[dict, list[dict], list[int]]:
    """Play ``make_boards()`` from a forked process into one hub here.

    Returns the hub's summary, the boards' stats and board0's R-peak samples.
    """
    ctx = mp.get_context("fork")  # forked before the hub starts any thread
    out = ctx.Queue()
    player = ctx.Process(target=_play, args=(make_boards, kwargs, out))
    player.start()
    hub = Hub(scorer)
    for i, url in enumerate(out.get()):
        hub.add_board(url, name=f"board{i}")
    hub.sinks.append(SqliteSink(db, hub.fs_of))
    samples: list[int] = []
    hub.on_beats = lambda scored: samples.extend(s.beat.sample for s in scored if s.beat.stream == "board0")
    stop, result = threading.Event(), {}
    runner = threading.Thread(target=lambda: result.update(hub.run(stop=stop)))
    runner.start()
    board_stats = out.get()
    player.join()
    time.sleep(1.0)
    stop.set()
    runner.join()
    return result, board_stats, samples


def accuracy(record, samples) -> dict:
    import wfdb.processing

    fs = record.fs
    ref = record.beat_samples[(record.beat_samples >= 3 * fs) & (record.beat_samples < record.signal.size - fs)]
    det = np.array(sorted(samples))
    det = det[(det >= 3 * fs) & (det < record.signal.size - fs)]
    c = wfdb.processing.compare_annotations(ref, det, int(0.15 * fs))
    return {"reference_beats": int(ref.size), "tp": int(c.tp), "fn": int(c.fn), "fp": int(c.fp),
            "sensitivity": float(c.sensitivity), "positive_predictivity": float(c.positive_predictivity)}


def brief(summary: dict) -> dict:
    keep = ("boards", "beats", "flagged", "warmup_beats", "frames", "frames_dropped", "frames_lost", "latency_ms")
    return {k: summary[k] for k in keep}


def default_bundle(out: Path) -> Path:
    """Export the shipped default model (what ``ecgedge demo`` and ``ecgedge export`` use)."""
    from ecgedge import load
    from ecgedge.export import export_bundle
    from ecgedge.models import default_model_path

    return export_bundle(load(default_model_path()), out, int8=True, fp16=False)


def environment(args, bundle: Path) -> dict:
    import onnxruntime
    import scipy
    import serial

    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
        "system": platform.platform(), "python": sys.version.split()[0],
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "onnxruntime": onnxruntime.__version__, "pyserial": serial.__version__},
        "settings": {"bundle": str(args.bundle or "shipped default model"), "precision": args.precision, "boards": args.boards, "seconds": args.seconds,
                     "samples_per_frame": 10, "sqlite": "WAL, synchronous=NORMAL, one commit per micro-batch"},
    }


def markdown(report: dict) -> str:
    env, r = report["environment"], report["runs"]
    lat = lambda s: " / ".join("n/a" if v is None else f"{v:.2f}" for v in s["latency_ms"].values())  # noqa: E731
    acc = r["accuracy"]["detection"]
    lines = [
        f"# Streaming benchmark ({env['date']})", "",
        f"{env['system']}, {env['cpus']} CPUs, Python {env['python']}, " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in env["settings"].items()), "",
        "| run | boards | beats | frames | dropped | lost | latency p50 / p99 / max (ms) | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes = {
        "accuracy": f"Se {acc['sensitivity']:.4f}, +P {acc['positive_predictivity']:.4f} ({acc['tp']} TP, {acc['fn']} FN, {acc['fp']} FP)",
        "latency": "one board, real time",
        **{name: f"real time; frames sent {sum(b['frames'] for b in run_['boards'])}, simulator overruns {sum(b['overruns'] for b in run_['boards'])}"
           for name, run_ in r.items() if name.startswith("capacity")},
        "faults": "damaged {damaged}, splits {splits}, dropped {dropped} by the board".format(**r["faults"]["boards"][0])
                  + f"; Se {r['faults']['detection']['sensitivity']:.4f}, +P {r['faults']['detection']['positive_predictivity']:.4f}",
        "replug": f"{r['replug']['boards'][0]['disconnects']} unplugs, reconnect (s) max {max(r['replug']['reconnect_s'] or [float('nan')]):.3f}",
    }
    for name, run_ in r.items():
        s = run_["summary"]
        lines.append(f"| {name} | {s['boards']} | {s['beats']} | {s['frames']} | {s['frames_dropped']} | {s['frames_lost']} | {lat(s)} | {notes[name]} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: the shipped model, exported)")
    parser.add_argument("--precision", default="int8", choices=["fp32", "int8", "fp16"])
    parser.add_argument("--boards", type=int, nargs="+", default=[60, 100, 200], help="board counts of the capacity runs")
    parser.add_argument("--seconds", type=float, default=60.0, help="real-time seconds of the latency and capacity runs")
    parser.add_argument("--speed", type=float, default=100.0, help="speed of the accuracy and fault runs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ecgedge-stream-"))
    bundle = args.bundle or default_bundle(work / "bundle")
    scorer = load_scorer(bundle, precision=args.precision, threads=1)
    record = load_wfdb_record(lead="MLII")
    runs = {}

    summary, stats, samples = run(scorer, lambda: [(VirtualBoard.from_record(), PtyEndpoint())], work / "accuracy.db", speed=args.speed)
    runs["accuracy"] = {"summary": brief(summary), "boards": stats, "detection": accuracy(record, samples)}
    print("accuracy", runs["accuracy"]["detection"], flush=True)

    summary, stats, _ = run(scorer, lambda: [(VirtualBoard.from_record(duration_s=args.seconds), PtyEndpoint())], work / "latency.db")
    runs["latency"] = {"summary": brief(summary), "boards": stats}
    print("latency", brief(summary), flush=True)

    for n in args.boards:
        def many(n=n):
            return [(VirtualBoard.from_record(start_s=(7 * i) % 1700, duration_s=args.seconds), PtyEndpoint()) for i in range(n)]

        summary, stats, _ = run(scorer, many, work / f"capacity-{n}.db")
        runs[f"capacity-{n}"] = {"summary": brief(summary), "boards": stats}
        print(f"capacity {n}", brief(summary), flush=True)

    faulty = lambda: [(VirtualBoard.from_record(corrupt_rate=1e-4, drop_rate=1e-3, seed=1), PtyEndpoint())]  # noqa: E731
    summary, stats, samples = run(scorer, faulty, work / "faults.db", speed=args.speed)
    runs["faults"] = {"summary": brief(summary), "boards": stats, "link": summary["links"]["board0"], "detection": accuracy(record, samples)}
    print("faults", runs["faults"]["link"], flush=True)

    replug = lambda: [(VirtualBoard.from_record(duration_s=600), TcpEndpoint())]  # noqa: E731
    summary, stats, _ = run(scorer, replug, work / "replug.db", speed=20, disconnect_every=5.0, downtime=0.5)
    runs["replug"] = {"summary": brief(summary), "boards": stats, "reconnect_s": summary["links"]["board0"]["reconnect_s"]}
    print("replug", runs["replug"]["reconnect_s"], flush=True)

    report = {"environment": environment(args, bundle), "runs": runs}
    write_results("stream", report, markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
