"""The arrhythmia alarms and the heart rate on the shared MIT-BIH records, against their reference annotations.

Every shared record (MLII; 102 and 104 on their first lead), its beats where the bridge finds them,
judged by the bridge's own :class:`~ecgedge.analysis.judge.BeatJudge` (LOPO population models for
DS1, the shipped one for the others; 5 minutes of learning), as ANSI/AAMI EC57 asks of arrhythmia
analysers, after the learning window:

- **ventricular couplets and runs** (3 or more): consecutive ventricular beats as the judge calls
  them (flagged by shape) against consecutive V / E beats of the reference; a reference couplet or
  run is found when a detected couplet or run overlaps it, a detected one is true when it overlaps
  a reference couplet or run (the overlap rule EC57 uses for episodes, applied to runs);
- **VF / flutter** (:mod:`ecgedge.analysis.fibrillation`, on the lead filtered as the bridge filters
  it): the reference's ``(VF`` / ``(VFL`` episodes of 4 s or more, each found when a ``vf`` alarm
  overlaps it; an alarm is false with no reference episode within 10 s;
- **VT**: the reference runs that meet the alarm's definition (5 or more ventricular beats over
  100 bpm), each found when a ``vt`` alarm starts within 10 s of its first beat; the time to alarm;
  an alarm is false when no reference ventricular run of 3 or more overlaps it;
- **extreme brady- and tachycardia, pauses**: the same definitions applied to the reference beats
  give the reference alarms; a detected alarm is false with no reference alarm of its kind within
  10 s; **asystole** (offline: 4 s between two beats the bridge found) likewise (the reference has
  no beats in ventricular flutter either: 207's flutter is a reference "asystole" here);
- **false alarms per hour** of each kind, and of the high-priority ones, on the records as they are
  and with the QRS benchmark's noise (baseline wander, mains, muscle) added at 6 dB (scored by the
  shipped population model for every record: a check of the alarms, not of the beat detection);
- **the heart-rate meter** against the same meter run on the reference beats: mean absolute error
  and the share of beats within 5 bpm, where both are valid.

    python benchmarks/alarms.py [WFDB_DIR] [--models DIR] [--tag TAG]
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ecgedge.analysis.alarms import PRIORITY, AlarmLimits, ArrhythmiaAlarms
from ecgedge.analysis.fibrillation import VFDetector, fibrillating, organised
from ecgedge.analysis.filters import ECG_BAND, bandpass_sos
from ecgedge.analysis.heart_rate import HeartRateMeter
from ecgedge.analysis.judge import BeatJudge, BeatView
from ecgedge.analysis.offline import cut_stream, score_beats
from ecgedge.datasets import add_noise, load_wfdb_record
from ecgedge.population import POPULATION_FORMAT

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mitdb import _pct  # noqa: E402
from results_file import write_results  # noqa: E402
from rhythm import shared_run  # noqa: E402

LEARNING_S = 300.0
WITHIN_S = 10.0
KINDS = ("vf", "vt", "brady", "tachy", "pause", "asystole")


def runs_of(flags: np.ndarray, samples: np.ndarray) -> list[tuple[int, int, int]]:
    """(first sample, last sample, length) of every run of consecutive True."""
    out, start = [], None
    for i, flag in enumerate(np.append(flags, False)):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append((int(samples[start]), int(samples[i - 1]), i - start))
            start = None
    return out


def overlaps(a: tuple, others: list[tuple], slack: int) -> bool:
    return any(a[0] <= b[1] + slack and b[0] <= a[1] + slack for b in others)


def alarms_of(samples: np.ndarray, rr: np.ndarray, ventricular: np.ndarray, fs: float) -> dict[str, list[tuple]]:
    """The alarms the definitions give on a beat sequence: kind -> [(start sample, end sample)]."""
    alarms, found, open_ = ArrhythmiaAlarms(AlarmLimits()), {k: [] for k in KINDS}, {}
    for sample, r, v in zip(samples.tolist(), rr.tolist(), ventricular.tolist(), strict=True):
        for change in alarms.add(sample, r, bool(v)):
            if change.active:
                open_[change.name] = change.sample
            elif change.name in open_:
                found[change.name].append((open_.pop(change.name), change.sample))
    found["asystole"] = [
        (int(a), int(b))
        for a, b in zip(samples[:-1], samples[1:], strict=True)
        if b - a > AlarmLimits().asystole_s * fs
    ]
    return found


def judge_stream(
    views: list[BeatView], scores: np.ndarray, offset: float, fs: float
) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The bridge's alarms (kind -> [(start, end)]); each beat's ventricular, usable, organised flags and heart rate."""
    judge = BeatJudge(adapt_s=LEARNING_S, beat_format=POPULATION_FORMAT)
    open_, found = {}, {k: [] for k in KINDS}
    ventricular, usable, normal = (np.zeros(len(views), bool) for _ in range(3))
    rate = np.full(len(views), np.nan)
    for i, (view, score) in enumerate(zip(views, scores.tolist(), strict=True)):
        verdict = judge.judge(score, offset, view)
        normal[i] = organised(verdict, score, offset)
        ventricular[i] = verdict.mode == "adapted" and verdict.reason == "shape"
        usable[i] = verdict.mode == "adapted" and verdict.quality == "ok"
        rate[i] = np.nan if verdict.heart_rate is None else verdict.heart_rate
        for event in judge.take_events():
            if event.kind == "alarm":
                open_[event.alarm] = event.sample
            elif event.kind == "alarm-over" and event.alarm in open_:
                found[event.alarm].append((open_.pop(event.alarm), event.sample))
    samples = np.array([v.sample for v in views])
    after = samples > LEARNING_S * fs
    found["asystole"] = [
        (int(a), int(b))
        for a, b in zip(samples[:-1][after[1:]], samples[1:][after[1:]], strict=True)
        if b - a > AlarmLimits().asystole_s * fs
    ]
    return found, ventricular, usable, normal, rate


def vf_episodes(signal: np.ndarray, fs: float, normal_samples: np.ndarray) -> list[tuple[int, int]]:
    """The ``vf`` alarms (first sample, end) the bridge raises on a lead filtered as it does, given its normal beats."""
    from scipy.signal import sosfilt

    y, detector, found, since = sosfilt(bandpass_sos(*ECG_BAND, fs), signal), VFDetector(fs), [], None
    step = round(0.1 * fs)
    for start in range(0, y.size, step):
        detector.add(start, y[start : start + step])
        before = normal_samples[normal_samples < (detector.window_end or 0)]
        active = fibrillating(detector, int(before[-1]) if before.size else None)
        if active and since is None:
            since = detector.window_end
        elif not active and since is not None:
            found.append((since, detector.window_end))
            since = None
    if since is not None:
        found.append((since, y.size))
    return found


def reference_vf(record) -> list[tuple[int, int]]:
    """The reference's ventricular fibrillation and flutter episodes (``(VF``, ``(VFL``), 4 s or longer."""
    bounds = list(record.rhythm_samples) + [record.signal.size]
    return [
        (a, b)
        for a, b, rhythm in zip(bounds[:-1], bounds[1:], record.rhythms, strict=True)
        if rhythm in ("(VF", "(VFL") and b - a >= 4 * record.fs
    ]


def reference_meter(rr: np.ndarray) -> np.ndarray:
    meter = HeartRateMeter()
    return np.array([np.nan if (h := meter.add(r)) is None else h for r in rr.tolist()])


def score_record(record, views, scores, offset, signal: np.ndarray | None = None) -> dict:
    fs = record.fs
    samples = np.array([v.sample for v in views])
    detected, ventricular, usable, normal, rate = judge_stream(views, scores, offset, fs)
    ref_samples, symbols = record.beat_samples, record.beat_symbols
    after_ref = ref_samples > LEARNING_S * fs
    ref_v = np.isin(symbols, ["V", "E"])
    ref_rr = np.append(np.nan, np.diff(ref_samples) / fs)
    reference = {
        k: [a for a in v if a[0] > LEARNING_S * fs] for k, v in alarms_of(ref_samples, ref_rr, ref_v, fs).items()
    }
    slack = round(0.15 * fs)
    ref_runs = [r for r in runs_of(ref_v, ref_samples) if r[0] > LEARNING_S * fs]
    det_runs = [
        r for r in runs_of(ventricular[usable | ventricular], samples[usable | ventricular]) if r[0] > LEARNING_S * fs
    ]
    out = {"hours": (ref_samples[-1] - LEARNING_S * fs) / fs / 3600}
    ref_multi, det_multi = [r for r in ref_runs if r[2] >= 2], [r for r in det_runs if r[2] >= 2]
    for name, lengths in (("couplet", (2, 2)), ("run", (3, 10**9))):
        ref = [r for r in ref_runs if lengths[0] <= r[2] <= lengths[1]]
        det = [r for r in det_runs if lengths[0] <= r[2] <= lengths[1]]
        out[name] = {
            "reference": len(ref),
            "found": sum(overlaps(r, det_multi, slack) for r in ref),
            "detected": len(det),
            "true": sum(overlaps(d, ref_multi, slack) for d in det),
        }
    vt_ref = [(a, b) for a, b in reference["vt"]]
    delays = []
    for onset, _ in vt_ref:
        starts = [a for a, _ in detected["vt"] if onset - fs <= a <= onset + WITHIN_S * fs]
        if starts:
            delays.append((min(starts) - onset) / fs)
    long_runs = [r for r in ref_runs if r[2] >= 3]
    out["vt"] = {
        "reference": len(vt_ref),
        "found": len(delays),
        "delays_s": delays,
        "alarms": len(detected["vt"]),
        "false": sum(not overlaps(a, long_runs, slack) for a in detected["vt"]),
    }
    vf_ref = reference_vf(record)
    vf_found = vf_episodes(record.signal if signal is None else signal, fs, samples[normal])
    out["vf"] = {
        "reference": len(vf_ref),
        "found": sum(overlaps(e, vf_found, 0) for e in vf_ref),
        "alarms": len(vf_found),
        "false": sum(not overlaps(a, vf_ref, round(WITHIN_S * fs)) for a in vf_found),
    }
    for kind in ("brady", "tachy", "pause", "asystole"):
        out[kind] = {
            "reference": len(reference[kind]),
            "alarms": len(detected[kind]),
            "false": sum(not overlaps(a, reference[kind], round(WITHIN_S * fs)) for a in detected[kind]),
        }
    reference_rate = reference_meter(ref_rr)
    nearest = np.clip(np.searchsorted(ref_samples, samples), 0, ref_samples.size - 1)
    both = np.isfinite(rate) & np.isfinite(reference_rate[nearest]) & after_ref[nearest]
    error = np.abs(rate[both] - reference_rate[nearest][both])
    out["heart_rate"] = {
        "beats": int(both.sum()),
        "abs_error_sum": float(error.sum()),
        "within_5": int(np.sum(error <= 5)),
    }
    return out


def noisy_false_alarms(directory: Path, records: list[str]) -> dict:
    """False alarms of each kind per hour with the QRS benchmark's noise at 6 dB (the shipped population model)."""
    from ecgedge import load
    from ecgedge.models import population_model_path

    model = load(population_model_path())
    totals = {"hours": 0.0, **{k: 0 for k in KINDS}}
    for name in records:
        record = _read(directory, name)
        signal = add_noise(record.signal, record.fs, 6.0, seed=int(name))
        beats = cut_stream(signal, record.fs, POPULATION_FORMAT, name=name)
        scored = score_record(record, beats, score_beats(beats, model), model.offset_, signal)
        totals["hours"] += scored["hours"]
        for kind in KINDS:
            totals[kind] += scored[kind]["false"]
        print(f"noise {name}", flush=True)
    return totals


def _read(directory: Path, name: str):
    try:
        return load_wfdb_record(directory / name, lead="MLII")
    except ValueError:
        return load_wfdb_record(directory / name, lead=0)


def main() -> None:
    from ecgedge import __version__

    started = time.time()
    args, beats, scores, offsets = shared_run(__doc__)
    per_record = {}
    for name in beats.records:
        mine = np.flatnonzero(beats.record == name)
        views = [
            BeatView(
                beats.X[i],
                float(beats.rr_before[i]),
                int(beats.sample[i]),
                int(beats.own_length[i]),
                float(beats.noise[i]),
                beats.atrial[i],
                float(beats.rr_after[i]),
            )
            for i in mine
        ]
        per_record[name] = score_record(_read(args.directory, name), views, scores[mine], offsets[name])
        print(name, flush=True)
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
            "python": platform.python_version(),
            "ecgedge": __version__,
            "numpy": np.__version__,
        },
        "settings": {
            "directory": str(args.directory),
            "learning_s": LEARNING_S,
            "limits": vars(AlarmLimits()),
            "within_s": WITHIN_S,
        },
        "per_record": per_record,
        "noise_6db": noisy_false_alarms(args.directory, list(beats.records)),
    }
    report["seconds"] = time.time() - started
    text = markdown(report)
    write_results("alarms", report, text, tag=args.tag)
    print(text)


def markdown(r: dict) -> str:
    per, m = r["per_record"], r["machine"]
    hours = sum(p["hours"] for p in per.values())

    def total(kind: str, key: str) -> int:
        return sum(p[kind][key] for p in per.values())

    def ratio(a: int, b: int) -> str:
        return _pct(a / b) if b else "-"

    lines = [
        f"Alarms on the {len(per)} shared MIT-BIH records after 5 minutes of learning ({hours:.1f} h judged); "
        f"Machine: {m['platform']}, {m['cpus']} CPUs, python {m['python']}, ecgedge {m['ecgedge']}; "
        f"{r['seconds']:.0f} s.",
        "",
        "| | reference | Se | detected | +P |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("couplet", "run"):
        lines.append(
            f"| ventricular {name}s | {total(name, 'reference')} | "
            f"{ratio(total(name, 'found'), total(name, 'reference'))} | {total(name, 'detected')} | "
            f"{ratio(total(name, 'true'), total(name, 'detected'))} |"
        )
    delays = [d for p in per.values() for d in p["vt"]["delays_s"]]
    lines.append(
        f"| VT (5+ ventricular beats > 100 bpm), alarm within {r['settings']['within_s']:g} s | "
        f"{total('vt', 'reference')} | {ratio(total('vt', 'found'), total('vt', 'reference'))} | "
        f"{total('vt', 'alarms')} | {ratio(total('vt', 'alarms') - total('vt', 'false'), total('vt', 'alarms'))} |"
    )
    lines.append(
        f"| VF / flutter episodes of 4 s or more (reference `(VF`, `(VFL`) | {total('vf', 'reference')} "
        f"| {ratio(total('vf', 'found'), total('vf', 'reference'))} | {total('vf', 'alarms')} "
        f"| {ratio(total('vf', 'alarms') - total('vf', 'false'), total('vf', 'alarms'))} |"
    )
    lines += [
        "",
        "Time from a VT run's first beat to its alarm: "
        + (f"median {np.median(delays):.1f} s, max {max(delays):.1f} s." if delays else "no VT found."),
        "",
        "| alarm | priority | reference | alarms | false | false / h | false / h, noise 6 dB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    noise = r["noise_6db"]
    for kind in KINDS:
        lines.append(
            f"| {kind} | {PRIORITY[kind]} | {total(kind, 'reference')} | {total(kind, 'alarms')} | "
            f"{total(kind, 'false')} | {total(kind, 'false') / hours:.2f} | {noise[kind] / noise['hours']:.2f} |"
        )
    high = sum(total(k, "false") for k in KINDS if PRIORITY[k] == "high")
    high_noise = sum(noise[k] for k in KINDS if PRIORITY[k] == "high")
    hr = [p["heart_rate"] for p in per.values()]
    n = sum(h["beats"] for h in hr)
    lines += [
        "",
        f"False high-priority alarms: {high / hours:.2f} an hour "
        f"({high_noise / noise['hours']:.2f} with noise at 6 dB).",
        f"Heart rate against the same meter on the reference beats: mean absolute error "
        f"{sum(h['abs_error_sum'] for h in hr) / n:.2f} bpm, {100 * sum(h['within_5'] for h in hr) / n:.1f} % of beats "
        f"within 5 bpm ({n} beats).",
    ]
    lines += [
        "",
        "| record | VT reference / found / alarms / false | vf | brady | tachy | pause | asystole |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in per.items():
        cells = [
            f"{p[k]['reference']} / {p[k]['alarms']} / {p[k]['false']}"
            for k in ("vf", "brady", "tachy", "pause", "asystole")
        ]
        lines.append(
            f"| {name} | {p['vt']['reference']} / {p['vt']['found']} / {p['vt']['alarms']} / {p['vt']['false']} | "
            + " | ".join(cells)
            + " |"
        )
    lines.append("\n(vf, brady, tachy, pause, asystole: reference / alarms / false.)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
