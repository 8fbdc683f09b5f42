"""Throughput of ``ecgedge scan``: beats per second on 1 worker and on a LocalCluster of 2, side by side.

Every run scans the same MIT-BIH records (the shared copies, 30 minutes each) from an
empty output folder, through :func:`ecgedge.scan.scan` on a fresh
``distributed.LocalCluster`` (worker processes, one thread each) whose workers have
loaded the bundle before the clock starts; the clock runs from the first task
submitted to the last recording written. Runs alternate (1, 2, 1, 2, ... workers) so
that a change in the machine's load hits both alike; the load average is recorded
around each run. From the one-worker rate, the on-paper time for 10,000 24-hour
Holter recordings on N workers.

Writes ``benchmarks/results/scan-<date>.json`` and ``.md``.

Usage: ``python benchmarks/scan.py [--data DIR] [--bundle DIR] [--repeats 1] [--records 100 101 ...]``
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from process_tree import machine_parallelism
from results_file import write_results

from ecgedge import __version__
from ecgedge.scan import Settings, scan
from ecgedge.scan.tasks import worker_scorer

#: A day-long Holter recording: about 100,000 beats.
HOLTER_BEATS = 100_000
HOLTER_S = 24 * 3600
ARCHIVE = 10_000
CLUSTERS = (1, 8, 64, 256, 1024)


def _load_bundle(settings: Settings) -> None:
    worker_scorer(settings)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    times = os.times()
    return times.user + times.system


def one_run(paths: list[Path], settings: Settings, workers: int) -> dict:
    """Scan ``paths`` on a fresh LocalCluster of ``workers`` processes; return what was measured."""
    from distributed import Client, LocalCluster

    out = Path(tempfile.mkdtemp(prefix=f"scan-bench-{workers}w-"))
    try:
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(_load_bundle, settings)  # the bundle is loaded before the clock starts
            load_before = os.getloadavg()
            cpu_before, own_before = sum(client.run(_cpu_seconds).values()), _cpu_seconds()
            report = scan(
                paths, out, settings, scheduler=cluster.scheduler_address, progress=False, echo=lambda s: None
            )
            cpu = sum(client.run(_cpu_seconds).values()) - cpu_before
            own = _cpu_seconds() - own_before
            load_after = os.getloadavg()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    failed = [(r["recording"], r["error"]) for r in report.failed]
    if failed:
        raise RuntimeError(f"recordings failed: {failed}")
    hours = sum(r["duration_s"] for r in report.rows) / 3600
    return {
        "workers": workers,
        "recordings": len(report.rows),
        "signal_hours": round(hours, 3),
        "beats": report.beats,
        "seconds": round(report.elapsed_s, 2),
        "beats_per_s": round(report.beats / report.elapsed_s, 1),
        "recordings_per_hour": round(len(report.rows) / report.elapsed_s * 3600, 1),
        "signal_hours_per_hour": round(hours / report.elapsed_s * 3600, 1),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in load_after],
        # what the machine gave: CPU seconds of the workers, and of this process (client and scheduler)
        "worker_cpu_s": round(cpu, 2),
        "client_cpu_s": round(own, 2),
        "cores_obtained": round((cpu + own) / report.elapsed_s, 2),
        "beats_per_worker_cpu_s": round(report.beats / cpu, 1),
    }


def projection(beats_per_s_per_worker: float, settings: Settings) -> list[dict]:
    """10,000 recordings of 24 h on N workers, from one worker's measured rate (linear scaling assumed)."""
    segments = int(np.ceil(HOLTER_S / settings.segment_s))
    overlap = 1 + (segments - 1) * settings.overlap_s / HOLTER_S  # signal streamed twice in the overlaps
    worker_hours = ARCHIVE * HOLTER_BEATS * overlap / beats_per_s_per_worker / 3600
    return [
        {
            "workers": n,
            "hours": round(worker_hours / n, 1),
            "worker_hours": round(worker_hours, 1),
            "tasks": ARCHIVE * segments,
            "segment_overhead": round(overlap - 1, 3),
        }
        for n in CLUSTERS
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb")
    parser.add_argument(
        "--bundle", type=Path, default=None, help="Default: the shipped model, exported to a temporary folder."
    )
    parser.add_argument("--records", nargs="*", default=None, help="Record names (default: every record in --data).")
    parser.add_argument("--repeats", type=int, default=1, help="Pairs of runs (1 worker, 2 workers).")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument(
        "--block-s",
        type=float,
        nargs="+",
        default=[0.1, 10.0],
        help="Block sizes fed to the pipeline (0.1: as a board sends).",
    )
    parser.add_argument("--tag", default="")
    args = parser.parse_args()

    bundle = args.bundle
    if bundle is None:
        from ecgedge.cli.deploy import write_bundle
        from ecgedge.models import default_model_path

        bundle = Path(tempfile.mkdtemp(prefix="scan-bench-bundle-")) / "bundle"
        write_bundle(default_model_path(), bundle, int8=True, fp16=False)
    paths = [args.data / r for r in args.records] if args.records else [args.data]
    base = Settings(bundle=str(bundle.resolve()), precision=args.precision, leads=("MLII", "V5"), calibration_beats=120)
    runs = []
    ceilings = []
    for repeat in range(args.repeats):
        for block_s in args.block_s:
            ceilings.append(machine_parallelism())
            for workers in (1, 2):
                run = {"block_s": block_s, **one_run(paths, dataclasses.replace(base, block_s=block_s), workers)}
                runs.append(run)
                print(
                    f"run {repeat + 1}, {block_s:g} s blocks, {workers} worker(s): {run['beats']} beats in "
                    f"{run['seconds']} s = {run['beats_per_s']} beats/s, {run['recordings_per_hour']} recordings/h, "
                    f"load {run['loadavg_before'][0]} -> {run['loadavg_after'][0]}",
                    flush=True,
                )
    rates = {
        b: {
            w: float(np.median([r["beats_per_s"] for r in runs if (r["block_s"], r["workers"]) == (b, w)]))
            for w in (1, 2)
        }
        for b in args.block_s
    }
    # a worker's own rate: beats per CPU second of a one-worker run (what it does with a core to itself)
    per_core = {
        b: float(np.median([r["beats_per_worker_cpu_s"] for r in runs if (r["block_s"], r["workers"]) == (b, 1)]))
        for b in args.block_s
    }
    ratios = {
        b: [
            round(two["beats_per_s"] / one["beats_per_s"], 3)
            for one, two in zip(runs[::2], runs[1::2], strict=True)
            if one["block_s"] == b
        ]
        for b in args.block_s
    }
    report = {
        "benchmark": "scan",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sched_autogroup": _autogroup(),
        },
        "versions": _versions(),
        "settings": {
            "data": str(args.data),
            "records": args.records or "all",
            "bundle": str(bundle),
            "precision": args.precision,
            "leads": list(base.leads),
            "calibration_beats": base.calibration_beats,
            "segment_s": base.segment_s,
            "overlap_s": base.overlap_s,
            "block_s": args.block_s,
            "repeats": args.repeats,
        },
        "runs": runs,
        # before each pair of runs: 2 spinning processes' throughput over 1 (the machine's own ceiling then)
        "machine_parallelism_2_vs_1": ceilings,
        "beats_per_s": {str(b): r for b, r in rates.items()},
        "scaling_2_vs_1": {str(b): r for b, r in ratios.items()},
        "beats_per_worker_cpu_s": {str(b): r for b, r in per_core.items()},
        "projection_10000_holter_24h": {str(b): projection(r, base) for b, r in per_core.items()},
    }
    write_results("scan", report, _markdown(report), tag=args.tag)


def _autogroup() -> str | None:
    """Whether the kernel shares CPU time per session (autogroup) rather than per process."""
    path = Path("/proc/sys/kernel/sched_autogroup_enabled")
    return path.read_text().strip() if path.exists() else None


def _versions() -> dict:
    import dask
    import distributed
    import onnxruntime
    import pyarrow

    return {
        "ecgedge": __version__,
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "onnxruntime": onnxruntime.__version__,
        "pyarrow": pyarrow.__version__,
        "numpy": np.__version__,
    }


def _markdown(report: dict) -> str:
    lines = [
        f"# ecgedge scan throughput ({report['when']}, {report['machine']['cpus']} CPUs, "
        "load average recorded per run)",
        "",
        "| block s | workers | recordings | signal h | beats | seconds | beats/s | recordings/h | load 1-min before "
        "-> after | worker CPU s | cores obtained | beats per worker CPU s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['block_s']:g} | {r['workers']} | {r['recordings']} | {r['signal_hours']} | {r['beats']} | "
            f"{r['seconds']} | {r['beats_per_s']} | {r['recordings_per_hour']} | {r['loadavg_before'][0]} -> "
            f"{r['loadavg_after'][0]} | {r['worker_cpu_s']} | {r['cores_obtained']} | {r['beats_per_worker_cpu_s']} |"
        )
    lines += [
        "",
        "Cores obtained: CPU seconds of the workers and of the client (with the scheduler) over the wall-clock "
        "seconds, what the machine gave the scan. Where the kernel shares CPU time per session (sched_autogroup "
        f"{report['machine']['sched_autogroup']}), the worker processes of one scan share one session's share of a "
        "busy machine: a second worker adds cores only where some are idle.",
    ]
    lines.append("")
    for block, ratios in report["scaling_2_vs_1"].items():
        lines.append(
            f"2 workers / 1 worker (beats/s), {float(block):g} s blocks, per pair of runs: "
            f"{', '.join(f'{r:.2f}x' for r in ratios)}  "
        )
    lines.append(
        "The machine's own ceiling before each pair (2 spinning Python processes over 1, in run order): "
        + ", ".join(f"{c:.2f}x" for c in report["machine_parallelism_2_vs_1"])
    )
    for block, rows in report["projection_10000_holter_24h"].items():
        rate = report["beats_per_worker_cpu_s"][block]
        lines += [
            "",
            f"## On paper: {ARCHIVE:,} Holter recordings of 24 h ({HOLTER_BEATS:,} beats each), {float(block):g} s "
            f"blocks, {rate:.0f} beats per CPU second of a worker (its rate with a core to itself)",
            "",
            "| workers | wall-clock hours | worker-hours | tasks (1 h segments) |",
            "| ---: | ---: | ---: | ---: |",
        ]
        lines += [f"| {p['workers']} | {p['hours']:,} | {p['worker_hours']:,} | {p['tasks']:,} |" for p in rows]
        lines += [
            "",
            "One worker per core, linear scaling assumed (no shared state between tasks but the bundle); segments "
            f"re-stream {rows[0]['segment_overhead']:.1%} of the signal as overlap.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
