"""Streaming benchmark of the firmware bridge: accuracy, latency, capacity, faults, replug.

Virtual boards (``ecgedge.firmware_bridge.simulator``) run in a separate
process, over real ptys or a TCP socket; the bridge (one :class:`Hub`) runs
here. Writes ``benchmarks/results/stream-<date>.json`` and ``.md``.

Runs:
- ``accuracy``: all 30 min of MIT-BIH 100 (MLII), fast, Se / +P against the
  reference beats (wfdb ``compare_annotations``, 150 ms).
- ``latency``: one board in real time; latency = the last sample a beat needs
  (its window's, or the one at which its next R peak was known) read from the
  port -> its row committed to SQLite (WAL).
- ``capacity-N``: N boards (``--boards``, default 60 100 200) at 360 Hz in
  real time over ptys, one bridge process, SQLite commits per micro-batch;
  every frame must arrive and latency must stay low for N to be sustained.
  Judged by the model's threshold, or (``--adapt SECONDS``) as the bridge judges
  by default: each board learns its patient, then its memory, rhythm, fusion and
  alarm layers judge every beat (the beats of each mode are counted).
- ``faults``: the full record with bit errors (1e-4 per byte) and 0.1 % frame drops.
- ``replug``: a socket board unplugged every 5 s for 0.5 s.
- ``overload-Kx`` (``--holds N``): K = 1, 2 and 5 times the N boards one process
  holds, ``--overload-seconds`` each: latency p50 / p99 (from when each beat's
  last sample would have been read had nothing waited, so time in the kernel
  counts), peak RSS of the bridge process during the run, samples and beats
  shed by the hub's overload policy, frames lost in the kernel.
- ``fuzz`` (``--fuzz SECONDS``): a good board beside ``--fuzz-boards`` hostile
  ones (:class:`~ecgedge.firmware_bridge.simulator.HostileBoard`), the longer
  run of ``tests/test_hub_fuzz.py``: exceptions escaped, internal errors,
  events, the good board's beats.
- ``workers``: capacity of ``ecgedge bridge --workers W`` for each ``--workers``
  count, run as a user runs it (its own process tree, ``--db``, ``--calibrate
  10``): board counts of ``--ladder`` in real time for ``--capacity-seconds``
  each, interleaved between the worker counts so they meet the same load, up
  to the first count a worker count does not hold. Held: p99 latency under
  ``--bound-ms``, no sample or beat shed, no frame lost. Each run records the
  bridge's CPU seconds and peak resident memory (all its processes), the
  machine's CPU use and load average, and before each board count what 2
  spinning processes get done against 1 (the most a second worker could add then).

Usage: ``python benchmarks/stream.py [--bundle DIR] [--runs ...] [--boards 200] [--seconds 60] [--holds 100]
[--fuzz 120] [--workers 1 2]``
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from process_tree import TreeSampler, machine_parallelism
from results_file import write_results

from ecgedge.datasets import load_wfdb_record
from ecgedge.firmware_bridge.hub import Hub
from ecgedge.firmware_bridge.settings import BridgeSettings, Judging
from ecgedge.firmware_bridge.simulator import (
    HostileBoard,
    PtyEndpoint,
    TcpEndpoint,
    VirtualBoard,
    run_boards,
)
from ecgedge.firmware_bridge.sinks import SqliteSink
from ecgedge.runtime import load_scorer


def _play(make_boards, kwargs, out: mp.Queue, play_s: float | None) -> None:
    """The board side, in its own process: make boards and endpoints, say where, play (at most ``play_s``)."""
    boards = make_boards()
    out.put(
        [
            (getattr(endpoint, "path", None) or endpoint.url, getattr(board, "fmt", "binary"))
            for board, endpoint in boards
        ]
    )
    stop = threading.Event()
    if play_s is not None:
        threading.Timer(play_s, stop.set).start()
    try:
        run_boards(boards, stop=stop, **kwargs)
        time.sleep(1.0)  # let the bridge read the last bytes before the ports go
    finally:
        for _, endpoint in boards:
            endpoint.close()
    out.put(
        [
            {**board.stats.as_dict(), **({"kinds": dict(board.kinds)} if hasattr(board, "kinds") else {})}
            for board, _ in boards
        ]
    )


def _reset_peak_rss() -> None:
    """Start the process's peak RSS (VmHWM) afresh (Linux >= 4.0), so each run reports its own."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{os.getpid()}/clear_refs").write_text("5")


def _peak_rss_mb() -> float | None:
    try:
        for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def start_hub(hub: Hub) -> tuple[threading.Thread, threading.Event, dict, list[str]]:
    """Run ``hub`` in a thread: the thread, the event that stops it, the summary it returns and what escaped it."""
    stop, result, escaped = threading.Event(), {}, []

    def serve() -> None:
        try:
            result.update(hub.run(stop=stop))
        except Exception as exc:  # noqa: BLE001 - reported, the benchmark counts it
            escaped.append(repr(exc))

    runner = threading.Thread(target=serve)
    runner.start()
    return runner, stop, result, escaped


def run(
    scorer, make_boards, db: Path, hub_options: dict | None = None, play_s: float | None = None, **kwargs
) -> tuple[dict, list[dict], list[int]]:
    """Play ``make_boards()`` from a forked process into one hub here.

    Returns the hub's summary (with ``peak_rss_mb`` and ``escaped``, the
    exception that left :meth:`Hub.run`, if any), the boards' stats and
    board0's R-peak samples.
    """
    ctx = mp.get_context("fork")  # forked before the hub starts any thread
    out = ctx.Queue()
    player = ctx.Process(target=_play, args=(make_boards, kwargs, out, play_s))
    player.start()
    _reset_peak_rss()
    hub = Hub(scorer, BridgeSettings(**{"judging": Judging.fixed(), **(hub_options or {})}))
    for i, (url, fmt) in enumerate(out.get()):
        ascii_format = {"fs": 360.0, "gain": 200.0, "baseline": 1024} if fmt == "ascii" else {}
        hub.add_board(url, name=f"board{i}", fmt=fmt, **ascii_format)
    hub.sinks.append(SqliteSink(db, hub.fs_of))
    samples: list[int] = []
    hub.on_beats = lambda scored: samples.extend(s.beat.sample for s in scored if s.beat.stream == "board0")
    runner, stop, result, escaped = start_hub(hub)
    board_stats = out.get()
    player.join()
    hub.wait_until_quiet(quiet=1.0, timeout=60)
    stop.set()
    runner.join()
    result = result or hub.summary()
    result["peak_rss_mb"] = _peak_rss_mb()
    with contextlib.closing(sqlite3.connect(db)) as rows:
        result["modes"] = dict(rows.execute("SELECT mode, COUNT(*) FROM beats GROUP BY mode").fetchall())
    result["escaped"] = escaped
    return result, board_stats, samples


def bridge_process(bundle: Path, precision: str, workers: int, n: int, seconds: float, db: Path) -> dict:
    """``n`` boards in real time for ``seconds`` into ``ecgedge bridge --workers W``, its own process tree.

    Returns the bridge's summary (``brief``), what its processes used
    (:class:`TreeSampler`), the boards' frames sent and overruns.
    """
    ctx = mp.get_context("fork")  # the player forks before this process starts any thread
    out = ctx.Queue()
    player = ctx.Process(target=_play, args=(lambda: many_boards(n, seconds), {"wait_reader": 300}, out, None))
    player.start()
    ports = [a for url, _ in out.get() for a in ("--port", url)]
    cmd = [
        sys.executable,
        "-c",
        "from ecgedge.cli import main; main()",
        "bridge",
        *ports,
        "--bundle",
        str(bundle),
        "--precision",
        precision,
        "--workers",
        str(workers),
        "--db",
        str(db),
        "--calibrate",
        "10",
        "--duration",
        str(seconds + 5),
    ]
    started = time.perf_counter()
    bridge = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(bridge.pid).start()
    stdout, stderr = bridge.communicate(timeout=seconds + 600)
    used = sampler.stop()
    if bridge.returncode != 0 or "summary-json: " not in stdout:
        player.terminate()
        raise RuntimeError(f"bridge --workers {workers} with {n} boards failed ({bridge.returncode}): {stderr[-2000:]}")
    boards = out.get(timeout=120)
    player.join()
    summary = brief(json.loads(stdout.split("summary-json: ")[1]))
    return {
        "summary": summary,
        "used": used,
        "wall_s": round(time.perf_counter() - started, 1),
        "frames_sent": sum(b["frames"] for b in boards),
        "overruns": sum(b["overruns"] for b in boards),
    }


def held(run_: dict, bound_ms: float) -> bool:
    """Whether the boards were held: p99 under the bound, nothing shed, every frame read."""
    s = run_["summary"]
    p99 = s["latency_ms"]["p99"]
    return (
        p99 is not None
        and p99 < bound_ms
        and s["shed_samples"] == 0
        and s["shed_beats"] == 0
        and s["frames_lost"] == 0
        and s["frames"] == run_["frames_sent"]
    )


def workers_capacity(args, bundle: Path, work: Path) -> dict:
    """The ``workers`` run: the ladder of board counts for each worker count, up to the first count it does not hold."""
    rows, holding = [], list(args.workers)
    for n in args.ladder:
        if not holding:
            break
        ceiling = machine_parallelism()
        for w in list(holding):
            row = {
                "workers": w,
                "boards": n,
                "machine_parallelism_2_vs_1": ceiling,
                **bridge_process(bundle, args.precision, w, n, args.capacity_seconds, work / f"workers-{w}-{n}.db"),
            }
            row["held"] = held(row, args.bound_ms)
            rows.append(row)
            print(f"workers {w}, {n} boards: held={row['held']}", row["summary"]["latency_ms"], row["used"], flush=True)
            if not row["held"]:
                holding.remove(w)
    capacity = {
        str(w): max((r["boards"] for r in rows if r["workers"] == w and r["held"]), default=0) for w in args.workers
    }
    return {"bound_ms": args.bound_ms, "seconds": args.capacity_seconds, "capacity": capacity, "rows": rows}


def accuracy(record, samples) -> dict:
    import wfdb.processing

    fs = record.fs
    ref = record.beat_samples[(record.beat_samples >= 3 * fs) & (record.beat_samples < record.signal.size - fs)]
    det = np.array(sorted(samples))
    det = det[(det >= 3 * fs) & (det < record.signal.size - fs)]
    c = wfdb.processing.compare_annotations(ref, det, int(0.15 * fs))
    return {
        "reference_beats": int(ref.size),
        "tp": int(c.tp),
        "fn": int(c.fn),
        "fp": int(c.fp),
        "sensitivity": float(c.sensitivity),
        "positive_predictivity": float(c.positive_predictivity),
    }


def brief(summary: dict) -> dict:
    keep = (
        "boards",
        "beats",
        "flagged",
        "warmup_beats",
        "frames",
        "frames_dropped",
        "frames_lost",
        "latency_ms",
        "shed_samples",
        "shed_beats",
        "internal_errors",
        "events",
        "peak_rss_mb",
        "escaped",
        "modes",
    )
    return {k: summary.get(k) for k in keep}


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
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "niceness": os.nice(0),
        "system": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "onnxruntime": onnxruntime.__version__,
            "pyserial": serial.__version__,
        },
        "settings": {
            "bundle": str(args.bundle or "shipped default model"),
            "precision": args.precision,
            "runs": args.runs,
            "boards": args.boards,
            "seconds": args.seconds,
            "adapt_s": args.adapt,
            "holds": args.holds,
            "overload_seconds": args.overload_seconds,
            "max_lag_s": args.max_lag,
            "beat_deadline_s": args.beat_deadline,
            "fuzz_seconds": args.fuzz,
            "fuzz_boards": args.fuzz_boards,
            "workers": args.workers,
            "ladder": args.ladder,
            "capacity_seconds": args.capacity_seconds,
            "bound_ms": args.bound_ms,
            "samples_per_frame": 10,
            "sqlite": "WAL, synchronous=NORMAL, one commit per micro-batch",
        },
    }


def _ms(value) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def markdown(report: dict) -> str:
    env, r = report["environment"], report["runs"]
    lines = [
        f"# Streaming benchmark ({env['date']})",
        "",
        f"{env['system']}, {env['cpus']} CPUs (load average at start "
        f"{', '.join(f'{v:.1f}' for v in env['load_average_at_start'])}: shared with other work; benchmark run at "
        f"niceness {env.get('niceness', 0)}), Python "
        + env["python"]
        + ", "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in env["settings"].items()),
        "",
    ]
    classic = [name for name in r if not name.startswith(("overload", "fuzz", "workers"))]
    if classic:
        lines += [
            "| run | boards | beats | frames | dropped | lost | latency p50 / p99 / max (ms) | notes |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in classic:
            s = r[name]["summary"]
            lat = " / ".join(_ms(v) for v in s["latency_ms"].values())
            lines.append(
                f"| {name} | {s['boards']} | {s['beats']} | {s['frames']} | {s['frames_dropped']} | "
                f"{s['frames_lost']} | {lat} | {_note(name, r[name])} |"
            )
    overload = [name for name in r if name.startswith("overload")]
    if overload:
        lines += [
            "",
            "Overload: boards in real time for the stated seconds; latency from when a beat's last sample would have "
            "been read (kernel and queue waits, and any lateness of the simulator, included); shed by the hub's "
            "policy (blocks queued more than max_lag_s, beats past their deadline). Peak RSS is the whole benchmark "
            "process (it imports torch to export the shipped model).",
            "",
            "| run | boards | beats | latency p50 / p99 / max (ms) | peak RSS (MB) | shed samples | shed beats | "
            "frames lost (kernel) | simulator overruns | simulator late max (s) | escaped |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name in overload:
            s, boards = r[name]["summary"], r[name]["boards"]
            lat = " / ".join(_ms(v) for v in s["latency_ms"].values())
            lines.append(
                f"| {name} | {s['boards']} | {s['beats']} | {lat} | {_ms(s['peak_rss_mb'])} | {s['shed_samples']} | "
                f"{s['shed_beats']} | {s['frames_lost']} | {sum(b['overruns'] for b in boards)} | "
                f"{max(b['late_max'] for b in boards):.2f} | {len(s['escaped'])} |"
            )
    if "workers" in r:
        lines += ["", workers_markdown(r["workers"])]
    if "fuzz" in r:
        f = r["fuzz"]
        s = f["summary"]
        lines += [
            "",
            f"Fuzz: {f['seconds']} s, 1 good board and {len(f['boards']) - 1} hostile ones: {len(s['escaped'])} "
            f"exceptions escaped, {s['internal_errors']} internal errors; good board {f['good_beats']} beats, longest "
            f"pause {f['good_longest_pause_s']:.2f} s; hostile chunks by kind {f['kinds']}; events {s['events']}",
        ]
    return "\n".join(lines) + "\n"


def workers_markdown(w: dict) -> str:
    """The ``workers`` run: capacity per worker count, then every run of the ladder."""
    capacity = ", ".join(f"{k} worker(s): {v} boards" for k, v in w["capacity"].items())
    lines = [
        f"Workers: `ecgedge bridge --workers W --db --calibrate 10`, boards in real time for {w['seconds']:g} s each, "
        f"board counts interleaved between worker counts; held = p99 < {w['bound_ms']:g} ms, nothing shed, every "
        f"frame read. Capacity: {capacity}. CPU: seconds used by all the bridge's processes (cores = CPU s / wall s "
        "of the bridge); RSS: peak of their sum; machine: CPU use of all cores and 1-minute load average during the "
        "run; 2 vs 1: what 2 spinning processes got done against 1 just before (2.0 = a free second core).",
        "",
        "| workers | boards | held | beats | latency p50 / p99 / max (ms) | shed samples / beats | frames lost | "
        "bridge CPU s (cores) | peak RSS (MB) | machine busy | load mean / max | 2 vs 1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in w["rows"]:
        s, u = r["summary"], r["used"]
        lat = " / ".join(_ms(v) for v in s["latency_ms"].values())
        lines.append(
            f"| {r['workers']} | {r['boards']} | {'yes' if r['held'] else 'no'} | {s['beats']} | {lat} | "
            f"{s['shed_samples']} / {s['shed_beats']} | {s['frames_lost']} | {u['cpu_s']:.1f} "
            f"({u['cpu_s'] / r['wall_s']:.2f}) | {u['peak_rss_mb']:.0f} | {u['machine_busy']:.0%} | "
            f"{u['load_1min_mean']} / {u['load_1min_max']} | {r['machine_parallelism_2_vs_1']:.2f} |"
        )
    return "\n".join(lines)


def _note(name: str, run_: dict) -> str:
    if name == "accuracy":
        acc = run_["detection"]
        return (
            f"Se {acc['sensitivity']:.4f}, +P {acc['positive_predictivity']:.4f} "
            f"({acc['tp']} TP, {acc['fn']} FN, {acc['fp']} FP)"
        )
    modes = ", ".join(f"{k} {v}" for k, v in sorted((run_["summary"].get("modes") or {}).items()))
    if name == "latency":
        return f"one board, real time; beats by mode: {modes}"
    if name.startswith("capacity"):
        return (
            f"real time; frames sent {sum(b['frames'] for b in run_['boards'])}, "
            f"simulator overruns {sum(b['overruns'] for b in run_['boards'])}; beats by mode: {modes}"
        )
    if name == "faults":
        return (
            "damaged {damaged}, splits {splits}, dropped {dropped} by the board".format(**run_["boards"][0])
            + f"; Se {run_['detection']['sensitivity']:.4f}, +P {run_['detection']['positive_predictivity']:.4f}"
        )
    return (
        f"{run_['boards'][0]['disconnects']} unplugs, "
        f"reconnect (s) max {max(run_['reconnect_s'] or [float('nan')]):.3f}"
    )


def many_boards(n: int, seconds: float):
    """``n`` boards, each a different stretch of record 100, ``seconds`` long, over ptys."""
    return [(VirtualBoard.from_record(start_s=(7 * i) % 1700, duration_s=seconds), PtyEndpoint()) for i in range(n)]


def fuzz_boards(n_hostile: int):
    """A good board (record 100) and ``n_hostile`` hostile ones (every 4th speaks ASCII)."""
    from ecgedge.datasets import load_wfdb_record as load

    record = load(lead="MLII")
    boards = [(VirtualBoard.from_record(), PtyEndpoint())]
    for seed in range(n_hostile):
        fmt = "ascii" if seed % 4 == 3 else "binary"
        boards.append((HostileBoard(record.to_adc(), record.fs, 200.0, 1024, seed=seed, fmt=fmt), PtyEndpoint()))
    return boards


CLASSIC = ("accuracy", "latency", "capacity", "faults", "replug")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--bundle", type=Path, default=None, help="bundle directory (default: the shipped model, exported)"
    )
    parser.add_argument("--precision", default="int8", choices=["fp32", "int8", "fp16"])
    parser.add_argument(
        "--runs", nargs="+", default=list(CLASSIC), choices=[*CLASSIC, "overload", "fuzz", "workers"], help="which runs"
    )
    parser.add_argument(
        "--boards", type=int, nargs="+", default=[60, 100, 200], help="board counts of the capacity runs"
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="real-time seconds of the latency and capacity runs"
    )
    parser.add_argument("--speed", type=float, default=100.0, help="speed of the accuracy and fault runs")
    parser.add_argument(
        "--adapt",
        type=float,
        default=None,
        metavar="SECONDS",
        help="the latency and capacity runs adapt each board to its patient over its first SECONDS (the bridge's "
        "default judging, with its memory, rhythm, fusion and alarm layers); default: the model's threshold",
    )
    parser.add_argument(
        "--holds",
        type=int,
        default=100,
        help="boards one process holds (measured with the capacity runs); overload runs 1x, 2x, 5x",
    )
    parser.add_argument("--overload-seconds", type=float, default=30.0, help="real-time seconds of each overload run")
    parser.add_argument("--max-lag", type=float, default=2.0, help="the hub's max_lag_s in the overload runs")
    parser.add_argument(
        "--beat-deadline", type=float, default=5.0, help="the hub's beat_deadline_s in the overload runs"
    )
    parser.add_argument("--fuzz", type=float, default=120.0, help="seconds of the fuzz run")
    parser.add_argument("--fuzz-boards", type=int, default=8, help="hostile boards in the fuzz run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts of the workers run")
    parser.add_argument(
        "--ladder",
        type=int,
        nargs="+",
        default=[10, 20, 30, 40, 50, 60, 80, 100, 120, 150, 200],
        help="board counts of the workers run, ascending",
    )
    parser.add_argument(
        "--capacity-seconds", type=float, default=20.0, help="real-time seconds of each run of the workers ladder"
    )
    parser.add_argument(
        "--bound-ms", type=float, default=100.0, help="p99 latency under which boards are held (the workers run)"
    )
    parser.add_argument("--tag", default="", help="appended to the results file name")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ecgedge-stream-"))
    bundle = args.bundle or default_bundle(work / "bundle")
    scorer = load_scorer(bundle, precision=args.precision, threads=1)
    record = load_wfdb_record(lead="MLII")
    env = environment(args, bundle)  # before the runs: the load average at start
    runs = {}

    if "accuracy" in args.runs:
        summary, stats, samples = run(
            scorer, lambda: [(VirtualBoard.from_record(), PtyEndpoint())], work / "accuracy.db", speed=args.speed
        )
        runs["accuracy"] = {"summary": brief(summary), "boards": stats, "detection": accuracy(record, samples)}
        print("accuracy", runs["accuracy"]["detection"], flush=True)

    judged = {"judging": Judging.adapt(args.adapt) if args.adapt else Judging.fixed()}
    if "latency" in args.runs:
        summary, stats, _ = run(
            scorer,
            lambda: [(VirtualBoard.from_record(duration_s=args.seconds), PtyEndpoint())],
            work / "latency.db",
            hub_options=judged,
        )
        runs["latency"] = {"summary": brief(summary), "boards": stats}
        print("latency", brief(summary), flush=True)

    for n in args.boards if "capacity" in args.runs else []:
        summary, stats, _ = run(
            scorer, lambda n=n: many_boards(n, args.seconds), work / f"capacity-{n}.db", hub_options=judged
        )
        runs[f"capacity-{n}"] = {"summary": brief(summary), "boards": stats}
        print(f"capacity {n}", brief(summary), flush=True)

    if "faults" in args.runs:
        faulty = lambda: [(VirtualBoard.from_record(corrupt_rate=1e-4, drop_rate=1e-3, seed=1), PtyEndpoint())]  # noqa: E731
        summary, stats, samples = run(scorer, faulty, work / "faults.db", speed=args.speed)
        runs["faults"] = {
            "summary": brief(summary),
            "boards": stats,
            "link": summary["links"]["board0"],
            "detection": accuracy(record, samples),
        }
        print("faults", runs["faults"]["link"], flush=True)

    if "replug" in args.runs:
        replug = lambda: [(VirtualBoard.from_record(duration_s=600), TcpEndpoint())]  # noqa: E731
        summary, stats, _ = run(scorer, replug, work / "replug.db", speed=20, disconnect_every=5.0, downtime=0.5)
        runs["replug"] = {
            "summary": brief(summary),
            "boards": stats,
            "reconnect_s": summary["links"]["board0"]["reconnect_s"],
        }
        print("replug", runs["replug"]["reconnect_s"], flush=True)

    for k in (1, 2, 5) if "overload" in args.runs else ():
        n = k * args.holds
        summary, stats, _ = run(
            scorer,
            lambda n=n: many_boards(n, args.overload_seconds),
            work / f"overload-{k}x.db",
            hub_options={
                "max_lag_s": args.max_lag,
                "beat_deadline_s": args.beat_deadline,
            },
        )
        runs[f"overload-{k}x"] = {
            "summary": brief(summary),
            "boards": [{key: b[key] for key in ("frames", "overruns", "late_max")} for b in stats],
        }
        print(f"overload {k}x ({n} boards)", brief(summary), flush=True)

    if "fuzz" in args.runs:
        summary, stats, samples = run(
            scorer,
            lambda: fuzz_boards(args.fuzz_boards),
            work / "fuzz.db",
            play_s=args.fuzz,
            speed=4.0,
            hub_options={"max_lag_s": 60.0},
        )
        kinds: dict[str, int] = {}
        for board in stats[1:]:
            for kind, count in board.get("kinds", {}).items():
                kinds[kind] = kinds.get(kind, 0) + count
        pauses = np.diff(sorted(samples)) / record.fs if len(samples) > 1 else np.array([float("nan")])
        runs["fuzz"] = {
            "summary": brief(summary),
            "boards": stats,
            "seconds": args.fuzz,
            "kinds": kinds,
            "good_beats": len(samples),
            "good_longest_pause_s": float(pauses.max()),
        }
        print("fuzz", runs["fuzz"]["summary"], kinds, flush=True)

    if "workers" in args.runs:
        runs["workers"] = workers_capacity(args, bundle, work)

    report = {"environment": env, "runs": runs}
    write_results("stream", report, markdown(report), tag=args.tag)
    print(markdown(report))


if __name__ == "__main__":
    main()
