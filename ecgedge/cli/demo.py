"""``ecgedge demo``: the whole path on bundled data, in under a minute.

Population model -> INT8 bundle -> a virtual board playing an MIT-BIH record
over a pty at high speed -> the bridge learning the patient, then flagging
beats -> summary, JSON lines, SQLite and a PNG report in ``--out``.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import click
import numpy as np

from ecgedge.analysis.ec57 import MATCH_S, nearest_reference
from ecgedge.analysis.judge import DEFAULT_ADAPT_S
from ecgedge.analysis.scored import ScoredBeat
from ecgedge.cli.options import FiniteFloat, requires


def _stream(bundle: Path, record_path, minutes: float, speed: float, out: Path, adapt_s: float):
    """Play the record into a hub; return the hub's summary and the scored beats."""
    from ecgedge.firmware_bridge.hub import Hub
    from ecgedge.firmware_bridge.settings import BridgeSettings, Judging
    from ecgedge.firmware_bridge.simulator import PtyEndpoint, VirtualBoard, run_boards
    from ecgedge.firmware_bridge.sinks import JsonlSink, SqliteSink
    from ecgedge.runtime import load_scorer

    hub = Hub(load_scorer(bundle, precision="int8", threads=1), BridgeSettings(judging=Judging.adapt(adapt_s)))
    endpoint = PtyEndpoint()
    hub.add_board(endpoint.path, name="bed1")
    for name in ("beats.jsonl", "beats.db", "beats.db-wal", "beats.db-shm"):
        (out / name).unlink(missing_ok=True)
    hub.sinks += [JsonlSink(out / "beats.jsonl"), SqliteSink(out / "beats.db", hub.fs_of)]
    scored: list[ScoredBeat] = []
    hub.on_beats = scored.extend
    board = VirtualBoard.from_record(record_path, duration_s=60 * minutes)
    stop, summary = threading.Event(), {}
    runner = threading.Thread(target=lambda: summary.update(hub.run(stop=stop)))
    runner.start()
    try:
        # the board waits for a bridge that falls behind (flow control): a slow machine makes the demo slower,
        # never loses its frames; the demo is not about overload
        run_boards([(board, endpoint)], speed=speed, wait_reader=10, flow_control=True)
        hub.wait_until_quiet(timeout=120.0)
    finally:
        stop.set()
        runner.join()
        endpoint.close()
    return summary, scored


def _against_annotations(record, scored: list[ScoredBeat]) -> dict:
    """Flag rate of the bridge's beats by the label of the reference beat within 150 ms (ANSI/AAMI EC57).

    A beat with no reference beat that near is a false detection, counted apart.
    """
    samples = np.array([s.beat.sample for s in scored])
    flags = np.array([s.anomaly for s in scored], dtype=bool)
    nearest = nearest_reference(samples, record.beat_samples, round(MATCH_S * record.fs))
    matched = nearest >= 0
    symbols, flagged = record.beat_symbols[nearest[matched]], flags[matched]
    normal = symbols == "N"
    return {
        "normal_beats": int(normal.sum()),
        "normal_flagged": int(flagged[normal].sum()),
        "other_beats": int((~normal).sum()),
        "other_flagged": int(flagged[~normal].sum()),
        "other_labels": sorted(set(symbols[~normal].tolist())),
        "false_detections": int((~matched).sum()),
        "false_detections_flagged": int(flags[~matched].sum()),
    }


def _plot(record, scored, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fs = record.fs
    t = np.array([s.beat.sample for s in scored]) / fs
    learning = np.array([s.learning for s in scored])
    distance = np.array([np.nan if s.verdict.distance is None else s.verdict.distance for s in scored])
    flag = np.array([s.anomaly for s in scored])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7))
    top.semilogy(t, distance, ".", ms=3, color="tab:blue", label="beat's distance to the patient's normal beats")
    top.axhline(1.0, color="k", lw=1, label="limit (above: flagged)")
    top.semilogy(t[flag], distance[flag], "o", mfc="none", color="tab:red", label=f"flagged ({flag.sum()})")
    if learning.any():
        top.axvspan(t[0], t[learning][-1], color="0.9", label="learning the patient (no flags)")
    top.set(xlabel="time (s)", ylabel="distance (limits)", title="Every beat the bridge judged")
    top.legend(loc="upper left", fontsize=8)
    later = np.flatnonzero(flag)
    centre = t[later[0]] if later.size else t[len(t) // 2]
    lo, hi = max(0.0, centre - 5), centre + 5
    span = slice(int(lo * fs), int(hi * fs))
    bottom.plot(np.arange(span.start, span.stop) / fs, record.signal[span], color="0.3", lw=0.8)
    for s in scored:
        x = s.beat.sample / fs
        if lo <= x <= hi:
            bottom.axvline(x, color="tab:red" if s.anomaly else "tab:green", alpha=0.5)
    ref = record.beat_samples[(record.beat_samples >= span.start) & (record.beat_samples < span.stop)]
    for r, sym in zip(ref, record.beat_symbols[np.isin(record.beat_samples, ref)], strict=True):  # the same beats
        bottom.annotate(
            sym, (r / fs, record.signal[r]), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8
        )
    bottom.set(
        xlabel="time (s)",
        ylabel=f"{record.lead} (mV)",
        title="10 s around the first flag (green: normal, red: flagged; letters: reference labels)",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="ecgedge-demo",
    show_default=True,
    help="Directory for the bundle, logs and report.",
)
@click.option(
    "--record", type=click.Path(dir_okay=False), default=None, help="WFDB record (default: the bundled MIT-BIH 100)."
)
@click.option(
    "--minutes", type=FiniteFloat(min=1), default=10.0, show_default=True, help="Minutes of the record to stream."
)
@click.option("--speed", type=FiniteFloat(min=1), default=60.0, show_default=True, help="Times real time.")
@click.option(
    "--adapt",
    "adapt_s",
    type=FiniteFloat(min=1),
    default=DEFAULT_ADAPT_S,
    show_default=True,
    help="Seconds of the record the bridge learns the patient from (logged, not flagged).",
)
@requires("export")
def demo(out, record, minutes, speed, adapt_s) -> None:
    """Run the whole path on bundled data: model -> INT8 bundle -> board -> bridge -> report.

    The record is read before anything is written, so a wrong --record stops
    at once and leaves nothing behind.
    """
    from ecgedge.cli.deploy import check_bundle_target, write_bundle
    from ecgedge.datasets import load_wfdb_record
    from ecgedge.models import population_model_path

    started = time.perf_counter()
    progress = lambda msg: click.echo(f"[{time.perf_counter() - started:5.1f} s] {msg}")  # noqa: E731
    try:
        reference = load_wfdb_record(record, lead="MLII")
    except (OSError, ValueError) as err:
        raise click.BadParameter(f"cannot read the WFDB record {record}: {err}", param_hint="--record") from None
    if reference.beat_samples.size < 2:
        raise click.BadParameter(
            f"the record {record} has no beat annotations (.atr) to judge the flags by", param_hint="--record"
        )
    if adapt_s >= 60 * minutes:
        raise click.BadParameter(
            f"--adapt {adapt_s:g} s leaves nothing of --minutes {minutes:g} to judge", param_hint="--adapt"
        )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} exists and is not a directory", param_hint="--out")
    bundle = check_bundle_target(out / "bundle")
    progress(f"model: {population_model_path()}")
    write_bundle(population_model_path(), bundle, int8=True, fp16=False)
    progress(f"bundle: {bundle} (INT8)")
    progress(f"streaming {minutes:g} min of {record or 'MIT-BIH 100'} at {speed:g}x over a pty ...")
    summary, scored = _stream(bundle, record, minutes, speed, out, adapt_s)
    judged = [s for s in scored if not s.learning]
    if not judged:
        raise click.ClickException(f"the bridge judged none of its {len(scored)} beats: all came while learning")
    truth = _against_annotations(reference, judged)
    _plot(reference, scored, out / "report.png")
    lat = summary["latency_ms"]
    report = {
        "summary": {k: v for k, v in summary.items() if k != "links"},
        "against_annotations": truth,
        "seconds": time.perf_counter() - started,
    }
    (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    progress(
        f"beats={summary['beats']} flagged={summary['flagged']} frames dropped={summary['frames_dropped']} "
        f"lost={summary['frames_lost']} "
        f"latency p50={lat['p50']:.2f} ms p99={lat['p99']:.2f} ms"
    )
    progress(
        f"after {adapt_s:g} s learning the patient: flagged {truth['normal_flagged']}/{truth['normal_beats']} "
        f"beats labelled N and {truth['other_flagged']}/{truth['other_beats']} labelled otherwise "
        f"({', '.join(truth['other_labels'])}); {truth['false_detections']} beats had no reference beat within "
        f"{1000 * MATCH_S:.0f} ms ({truth['false_detections_flagged']} flagged)"
    )
    progress(f"report: {out / 'report.png'}, {out / 'summary.json'}, {out / 'beats.jsonl'}, {out / 'beats.db'}")
