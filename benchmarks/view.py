"""The bedside page does not slow the hub: 16 boards with and without 4 viewers, side by side.

Each run: 16 virtual boards (MIT-BIH 100, different stretches) in real time over ptys from a forked
process into ``ecgedge bridge --http`` (its own process, SQLite ``--db``, INT8). With viewers, three
read the event stream as fast as it comes and one opens it and never reads (a paused or dead
browser). Runs alternate, twice each, so both arms meet the same machine. Reported per run: the
hub's latency p50 / p99 (last sample of a beat's window read -> row committed), frames dropped or
lost, samples and beats shed, the bridge's peak memory, the page's bytes per second per board (what
a reading viewer received), and the display frames dropped for the slow viewer.

    python benchmarks/view.py [--seconds 30] [--boards 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from process_tree import TreeSampler  # noqa: E402
from results_file import machine, write_results  # noqa: E402
from stream import _play, default_bundle, many_boards  # noqa: E402

TOKEN = "benchmark-token-0123456789"


def _reader(host: str, port: int, counts: list, index: int, stop: threading.Event) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/api/events", headers={"Authorization": f"Bearer {TOKEN}"})
    response = conn.getresponse()
    while not stop.is_set():
        try:
            data = response.read1(65536)
        except OSError:
            break
        if not data:
            break
        counts[index] += len(data)
    conn.close()


def one_run(bundle: Path, boards: int, seconds: float, viewers: bool, work: Path) -> dict:
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    player = ctx.Process(target=_play, args=(lambda: many_boards(boards, seconds), {"wait_reader": 300}, out, None))
    player.start()
    ports = [a for url, _ in out.get() for a in ("--port", url)]
    db = work / f"view-{time.monotonic_ns()}.db"
    cmd = [
        sys.executable,
        "-c",
        "from ecgedge.cli import main; main()",
        "bridge",
        *ports,
        "--bundle",
        str(bundle),
        "--precision",
        "int8",
        "--db",
        str(db),
        "--http",
        "127.0.0.1:0",
        "--http-token",
        TOKEN,
        "--duration",
        str(seconds + 5),
    ]
    bridge = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(bridge.pid).start()
    host, port = re.search(r"page at http://([\d.]+):(\d+)/", bridge.stderr.readline()).groups()
    counts, stop, threads, stalled = [0, 0, 0], threading.Event(), [], None
    started = time.perf_counter()
    if viewers:
        threads = [
            threading.Thread(target=_reader, args=(host, int(port), counts, i, stop), daemon=True) for i in range(3)
        ]
        for thread in threads:
            thread.start()
        stalled = socket.create_connection((host, int(port)))
        stalled.sendall(f"GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    stdout, stderr = bridge.communicate(timeout=seconds + 300)
    wall = time.perf_counter() - started
    used = sampler.stop()
    stop.set()
    if stalled is not None:
        stalled.close()
    boards_stats = out.get(timeout=120)
    player.join()
    if bridge.returncode != 0:
        raise RuntimeError(f"bridge failed ({bridge.returncode}): {stderr[-2000:]}")
    summary = json.loads(stdout.split("summary-json: ")[1])
    dropped = int(re.search(r"view: (\d+) display frames dropped", stderr).group(1))
    return {
        "viewers": 4 if viewers else 0,
        "latency_ms": summary["latency_ms"],
        "beats": summary["beats"],
        "frames_dropped": summary["frames_dropped"],
        "frames_lost": summary["frames_lost"],
        "shed_samples": summary["shed_samples"],
        "shed_beats": summary["shed_beats"],
        "frames_sent": sum(b["frames"] for b in boards_stats),
        "peak_rss_mb": used.get("peak_rss_mb"),
        "page_bytes_per_s_per_board": (max(counts) / wall / boards) if viewers else None,
        "viewer_bytes": counts if viewers else None,
        "display_frames_dropped": dropped,
        "wall_s": round(wall, 1),
    }


def main() -> None:
    import numpy as np
    import onnxruntime

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--boards", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = default_bundle(work)
        runs = [
            one_run(bundle, args.boards, args.seconds, viewers, work)
            for _ in range(args.repeats)
            for viewers in (False, True)
        ]
    p99 = {v: float(np.median([r["latency_ms"]["p99"] for r in runs if r["viewers"] == v])) for v in (0, 4)}
    report = {
        "machine": machine(onnxruntime=onnxruntime.__version__),
        "settings": vars(args),
        "runs": runs,
        "p99_ratio_with_over_without": p99[4] / p99[0],
    }
    text = markdown(report)
    write_results("view", report, text, tag=args.tag)
    print(text)


def markdown(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    lines = [
        f"{s['boards']} boards (MIT-BIH 100) in real time over ptys into `ecgedge bridge --http --db`, INT8, "
        f"{s['seconds']:g} s a run, runs alternating; viewers: 3 reading the event stream, 1 never reading.",
        f"Machine: {m['platform']}, {m['cpus']} CPUs, load {tuple(round(x, 1) for x in m['load_avg'])}; python "
        f"{m['python']}, ecgedge {m['ecgedge']}, onnxruntime {m['onnxruntime']}.",
        "",
        "| viewers | beats | frames sent | dropped / lost | shed samples / beats | latency p50 / p99 (ms) | bridge "
        "peak RSS (MB) | page bytes/s per board | display frames dropped (slow viewer) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        rate = "-" if r["page_bytes_per_s_per_board"] is None else f"{r['page_bytes_per_s_per_board']:,.0f}"
        lines.append(
            f"| {r['viewers']} | {r['beats']} | {r['frames_sent']} | {r['frames_dropped']} / {r['frames_lost']} "
            f"| {r['shed_samples']} / {r['shed_beats']} | {r['latency_ms']['p50']:.1f} / {r['latency_ms']['p99']:.1f} "
            f"| {r['peak_rss_mb']:.0f} | {rate} | {r['display_frames_dropped']} |"
        )
    lines += ["", f"Median p99 with viewers over without: {report['p99_ratio_with_over_without']:.2f}."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
