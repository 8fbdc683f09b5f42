"""QRS detection on a WFDB database (MIT-BIH Arrhythmia), scored by ANSI/AAMI EC57 conventions.

ecgedge's detector runs exactly as the bridge runs it: the lead's ADC counts
are pushed in 0.1 s chunks into a :class:`~ecgedge.firmware_bridge.pipeline.StreamPipeline`
(automatic polarity) and filtered by a :class:`~ecgedge.analysis.streams.FilterStage`;
only the R peaks the detector returns are recorded, with the sample index the
stream had reached when each was returned (its decision delay). The offline
peers a user would try, :func:`wfdb.processing.xqrs_detect` and
:func:`wfdb.processing.gqrs_detect`, see the whole record at once.

Scoring (EC57-style): reference beats are the annotations whose symbol is a
beat label (``ecgedge.datasets`` list: N L R B A a J S V r F e j n E / f Q ?);
non-beat annotations (rhythm ``+``, noise ``~``, artefact ``|``, ventricular
flutter waves ``!``, ...) are not beats. A detection matches a reference beat
within 150 ms (``wfdb.processing.compare_annotations``). The first 5 s are
skipped (the detector learns its levels there), and, as EC57 does, the
ventricular flutter / fibrillation episodes (between ``[`` and ``]``
annotations; in the 27 shared records only 207 has them, 2.2 min) are
excluded: neither beats nor detections inside them count.

Noise robustness: the same run with noise added to the lead at a known SNR
(signal power = variance of the lead; noise = equal powers of baseline
wander (sum of 0.1-0.5 Hz sinusoids), 60 Hz mains hum with slowly varying
amplitude, and muscle-like noise (white noise band-passed 10-150 Hz, overlapping the QRS band, in
bursts)); seeded per record.

Usage: ``python benchmarks/qrs.py [WFDB_DIR] [--records 203 208] [--no-peers]
[--snr 12 6 0] [--noise-peers] [--chunk 0.1]``. Writes ``benchmarks/results/qrs-<date>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy
import wfdb
import wfdb.processing
from results_file import write_results

from ecgedge.analysis.ec57 import MATCH_S
from ecgedge.analysis.rpeaks import StreamingRPeakDetector
from ecgedge.analysis.streams import FilterStage
from ecgedge.beatformat import BeatFormat
from ecgedge.datasets import WfdbRecord, add_noise, load_wfdb_record
from ecgedge.firmware_bridge.pipeline import StreamPipeline
from ecgedge.firmware_bridge.protocol import Hello

SKIP_S = 5.0
CHUNK_S = 0.1
REPO = Path(__file__).resolve().parents[1]


def default_wfdb_dir() -> Path:
    """``/work/shared/data/mitdb`` or ``../shared/data/mitdb`` next to the repository."""
    for folder in (REPO.parent / "shared" / "data" / "mitdb", Path("/work/shared/data/mitdb")):
        if folder.is_dir():
            return folder
    return REPO.parent / "shared" / "data" / "mitdb"


def load_lead(path: Path) -> WfdbRecord:
    """The record's MLII lead, or its first signal when it has no MLII (102, 104)."""
    names = wfdb.rdheader(str(path)).sig_name
    return load_wfdb_record(path, lead="MLII" if "MLII" in names else 0)


def excluded_intervals(path: Path) -> list[tuple[int, int]]:
    """Ventricular flutter / fibrillation episodes ``[`` ... ``]`` of the reference annotations."""
    ann = wfdb.rdann(str(path), "atr")
    spans, opened = [], None
    for sample, symbol in zip(ann.sample, ann.symbol, strict=False):
        if symbol == "[":
            opened = int(sample)
        elif symbol == "]" and opened is not None:
            spans.append((opened, int(sample)))
            opened = None
    if opened is not None:
        spans.append((opened, int(ann.sample[-1]) + 1))
    return spans


class _RecordingDetector(StreamingRPeakDetector):
    """The bridge's detector, noting when each R peak is returned and the time spent."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.found: list[tuple[int, int]] = []  # (R sample, stream index when returned)
        self.seconds = 0.0

    def process(self, y: np.ndarray, qrs: np.ndarray, start: int) -> list[int]:
        t0 = time.perf_counter()
        peaks = super().process(y, qrs, start)
        self.seconds += time.perf_counter() - t0
        self.found += [(r, start + y.size) for r in peaks]
        return peaks


@dataclass
class StreamRun:
    """R peaks a streamed recording gave, with their decision times and the cost."""

    peaks: np.ndarray
    returned_at: np.ndarray
    detector_s: float
    total_s: float
    samples: int
    polarity: int = 0
    extra: dict = field(default_factory=dict)


def stream_r_peaks(record: WfdbRecord, signal: np.ndarray | None = None, chunk_s: float = CHUNK_S) -> StreamRun:
    """Run a recorded lead through the bridge's pipeline in chunks, as a board would send it.

    Parameters
    ----------
    record : WfdbRecord
        Gives the sample rate, ADC gain and baseline.
    signal : ndarray of shape (n,), optional
        The lead in mV (default ``record.signal``; e.g. a noisy copy).
    chunk_s : float, default=0.1
        Seconds per pushed chunk.
    """
    mv = record.signal if signal is None else signal
    adc = np.round(mv * record.adc_gain + record.baseline).astype(np.int64)
    pipeline = StreamPipeline("bench", BeatFormat(140), polarity="auto")
    pipeline.configure(Hello(record.fs, 11, record.adc_gain, record.baseline, (record.lead,)))
    pipeline.finder.detector = detector = _RecordingDetector(record.fs, polarity=pipeline.polarity)
    stage, step = FilterStage(), max(1, round(chunk_s * record.fs))
    t0 = time.perf_counter()
    for first in range(0, adc.size, step):
        pipeline.push(first, adc[first : first + step, None], 0.0)
        stage.run([pipeline])
    total = time.perf_counter() - t0
    found = np.array(detector.found, dtype=np.int64).reshape(-1, 2)
    return StreamRun(found[:, 0], found[:, 1], detector.seconds, total, adc.size, detector.polarity)


def score(ref: np.ndarray, det: np.ndarray, fs: float, excluded: list[tuple[int, int]], returned_at=None) -> dict:
    """EC57-style beat-by-beat comparison after the first :data:`SKIP_S` seconds, outside ``excluded``.

    Returns TP, FN, FP, Se, +P and, when ``returned_at`` (the stream index at
    which each detection was returned) is given, the decision delays (s) of the
    matched beats: returned index minus the reference R index.
    """

    def kept(samples: np.ndarray) -> np.ndarray:
        keep = samples >= SKIP_S * fs
        for lo, hi in excluded:
            keep &= (samples < lo) | (samples > hi)
        return keep

    ref, det = np.asarray(ref, dtype=np.int64), np.asarray(det, dtype=np.int64)
    ref = ref[kept(ref)]
    keep = kept(det)
    det = det[keep]
    c = wfdb.processing.compare_annotations(ref, det, int(MATCH_S * fs))
    out = {
        "tp": int(c.tp),
        "fn": int(c.fn),
        "fp": int(c.fp),
        "se": float(c.sensitivity),
        "ppv": float(c.positive_predictivity),
    }
    if returned_at is not None:
        returned = np.asarray(returned_at)[keep]
        matched = c.matching_sample_nums >= 0
        out["delays_s"] = ((returned[c.matching_sample_nums[matched]] - ref[matched]) / fs).tolist()
    return out


def noisy(record: WfdbRecord, snr_db: float, seed: int) -> np.ndarray:
    """The lead plus baseline wander, 60 Hz hum and muscle-like noise, at ``snr_db`` over the lead's variance."""
    return add_noise(record.signal, record.fs, snr_db, ("wander", "mains", "muscle"), seed)


def peers(signal: np.ndarray, fs: float) -> dict[str, np.ndarray]:
    """R peaks by the offline peers, on the whole lead (mV)."""
    return {
        "xqrs": np.asarray(wfdb.processing.xqrs_detect(signal, fs, verbose=False), dtype=np.int64),
        "gqrs": np.asarray(wfdb.processing.gqrs_detect(signal, fs=fs), dtype=np.int64),
    }


def gross(rows: list[dict]) -> dict:
    """Pooled TP / FN / FP, Se and +P of per-record scores."""
    tp, fn, fp = (sum(r[k] for r in rows) for k in ("tp", "fn", "fp"))
    return {"tp": tp, "fn": fn, "fp": fp, "se": tp / max(tp + fn, 1), "ppv": tp / max(tp + fp, 1)}


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def score_record(
    path: Path, with_peers: bool, snrs: list[float], noise_peers: bool, seed: int, chunk_s: float = CHUNK_S
) -> dict:
    """Everything measured on one record: ecgedge streamed (clean and noisy), the peers offline."""
    record, excluded = load_lead(path), excluded_intervals(path)
    t0 = time.perf_counter()
    streamed = stream_r_peaks(record, chunk_s=chunk_s)
    row = {
        "lead": record.lead,
        "ecgedge": score(record.beat_samples, streamed.peaks, record.fs, excluded, streamed.returned_at),
    }
    out = {
        "row": row,
        "delays_s": row["ecgedge"].pop("delays_s"),
        "noise": {},
        "cost": (streamed.detector_s, streamed.total_s, streamed.samples),
    }
    if with_peers:
        for peer, found in peers(record.signal, record.fs).items():
            row[peer] = score(record.beat_samples, found, record.fs, excluded)
    for snr in snrs:
        signal = noisy(record, snr, seed + int(path.name) if path.name.isdigit() else seed)
        found = {"ecgedge": stream_r_peaks(record, signal, chunk_s).peaks}
        if noise_peers:
            found.update(peers(signal, record.fs))
        out["noise"][f"{snr:g}"] = {
            who: score(record.beat_samples, peaks, record.fs, excluded) for who, peaks in found.items()
        }
    e = row["ecgedge"]
    print(
        f"{path.name} ({record.lead}): Se {_pct(e['se'])} +P {_pct(e['ppv'])} FN {e['fn']} FP {e['fp']}"
        + "".join(f" | {p} {_pct(row[p]['se'])}/{_pct(row[p]['ppv'])}" for p in ("xqrs", "gqrs") if p in row)
        + f" [{time.perf_counter() - t0:.1f} s]",
        flush=True,
    )
    return out


def run(
    folder: Path,
    records: list[str],
    with_peers: bool,
    snrs: list[float],
    noise_peers: bool,
    seed: int,
    jobs: int = 1,
    chunk_s: float = CHUNK_S,
) -> dict:
    """Score every record (in ``jobs`` processes) and pool the results."""
    args = [(folder / name, with_peers, snrs, noise_peers, seed, chunk_s) for name in records]
    if jobs > 1:
        with multiprocessing.Pool(jobs) as pool:
            results = pool.starmap(score_record, args)
    else:
        results = [score_record(*a) for a in args]
    per_record = {name: r["row"] for name, r in zip(records, results, strict=True)}
    delays_ms = 1000 * np.concatenate([r["delays_s"] for r in results])
    detector_s, total_s, samples = (sum(r["cost"][k] for r in results) for k in range(3))
    noise: dict[str, dict[str, dict]] = {}
    for snr in (f"{s:g}" for s in snrs):
        whos = results[0]["noise"][snr]
        noise[snr] = {w: gross([r["noise"][snr][w] for r in results]) for w in whos}
    who = ["ecgedge"] + (["xqrs", "gqrs"] if with_peers else [])
    return {
        "settings": {
            "wfdb_dir": str(folder),
            "records": records,
            "skip_s": SKIP_S,
            "match_window_s": MATCH_S,
            "chunk_s": chunk_s,
            "polarity": "auto",
            "lead": "MLII (first signal for 102, 104)",
            "excluded": "ventricular flutter/fibrillation episodes ([ ... ])",
            "snr_db": snrs,
            "seed": seed,
            "jobs": jobs,
        },
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "wfdb": wfdb.__version__},
        "per_record": per_record,
        "gross": {w: gross([per_record[r][w] for r in records]) for w in who},
        "delay_ms": {
            "p50": float(np.percentile(delays_ms, 50)),
            "p99": float(np.percentile(delays_ms, 99)),
            "max": float(delays_ms.max()),
            "over_300_ms": float(np.mean(delays_ms > 300)),
        },
        "cost_us_per_sample": {"detector": 1e6 * detector_s / samples, "pipeline": 1e6 * total_s / samples},
        "noise": noise,
    }


def markdown(report: dict) -> str:
    s, who = report["settings"], list(report["gross"])
    head = "| record | lead | " + " | ".join(f"{w} Se % | {w} +P % | {w} FN | {w} FP" for w in who) + " |"
    m = report["machine"]
    intro = (
        f"QRS detection, {len(s['records'])} records of {s['wfdb_dir']}: first {s['skip_s']:g} s skipped, "
        f"{1000 * s['match_window_s']:.0f} ms match window, {s['excluded']} excluded. ecgedge streamed as the "
        f"bridge runs it ({s['chunk_s']:.3g} s chunks, causal filters, polarity {s['polarity']}, lead {s['lead']}); "
        "xqrs and gqrs (wfdb) offline on the whole record."
    )
    machine = (
        f"Machine: {m['platform']}, {m['cpus']} CPUs, Python {m['python']}. "
        f"Versions: {', '.join(f'{k} {v}' for k, v in report['versions'].items())}."
    )
    lines = [intro, "", machine, "", head, "|" + "---|" * (2 + 4 * len(who))]
    rows = list(report["per_record"].items()) + [("gross", {"lead": "", **report["gross"]})]
    for name, row in rows:
        cells = " | ".join(
            f"{_pct(row[w]['se'])} | {_pct(row[w]['ppv'])} | {row[w]['fn']} | {row[w]['fp']}" for w in who
        )
        lines.append(f"| {name} | {row['lead']} | {cells} |")
    d, c = report["delay_ms"], report["cost_us_per_sample"]
    delay = (
        f"ecgedge decision delay (returned index - annotated R), matched beats: p50 {d['p50']:.0f} ms, "
        f"p99 {d['p99']:.0f} ms, max {d['max']:.0f} ms; {100 * d['over_300_ms']:.2f} % over 300 ms."
    )
    cost = (
        f"Cost per sample: detector {c['detector']:.2f} us, whole pipeline (filters, detector, beat cutting) "
        f"{c['pipeline']:.2f} us ({s['jobs']} records in parallel on {m['cpus']} CPUs)."
    )
    below = [
        f"{name} ({_pct(row['ecgedge']['se'])} / {_pct(row['ecgedge']['ppv'])})"
        for name, row in report["per_record"].items()
        if min(row["ecgedge"]["se"], row["ecgedge"]["ppv"]) < 0.99
    ]
    lines += ["", f"ecgedge records below 99 % (Se / +P): {', '.join(below) or 'none'}.", "", delay, cost]
    if report["noise"]:
        title = f"Noise added (baseline wander + 60 Hz hum + muscle-like, equal powers; seed {s['seed']}):"
        lines += ["", title, "", "| SNR dB | detector | Se % | +P % | FN | FP |", "|---|---|---|---|---|---|"]
        for snr, by in report["noise"].items():
            lines += [
                f"| {snr} | {w} | {_pct(g['se'])} | {_pct(g['ppv'])} | {g['fn']} | {g['fp']} |" for w, g in by.items()
            ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wfdb_dir", nargs="?", type=Path, default=default_wfdb_dir())
    parser.add_argument("--records", nargs="+", help="record names (default: every record with a .atr)")
    parser.add_argument("--no-peers", action="store_true", help="skip xqrs and gqrs")
    parser.add_argument("--snr", nargs="*", type=float, default=[12.0, 6.0, 0.0], help="noise SNRs in dB (none: skip)")
    parser.add_argument("--noise-peers", action="store_true", help="run the peers on the noisy signals too")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="records scored in parallel (costs per sample get noisier)")
    parser.add_argument(
        "--chunk",
        type=float,
        default=CHUNK_S,
        help="seconds per pushed chunk (the simulator sends 10-sample frames: 0.028 s at 360 Hz)",
    )
    parser.add_argument("--tag", default="", help="appended to the results file name")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if not args.wfdb_dir.is_dir():
        sys.exit(f"no WFDB directory at {args.wfdb_dir}")
    records = args.records or sorted(p.stem for p in args.wfdb_dir.glob("*.atr"))
    report = run(
        args.wfdb_dir, records, not args.no_peers, args.snr, args.noise_peers, args.seed, args.jobs, args.chunk
    )
    text = markdown(report)
    print(text)
    if not args.no_write:
        write_results("qrs", report, text, tag=args.tag)


if __name__ == "__main__":
    main()
