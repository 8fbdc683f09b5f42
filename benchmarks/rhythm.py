"""Rhythm and signal quality on MIT-BIH records: AF read from the RR series, beats in noise set apart.

Every shared record (MLII; 102 and 104, which lack it, on their first lead), its beats where the
bridge finds them (the offline path), judged by the bridge's own :class:`~ecgedge.analysis.judge.BeatJudge`
with a 5-minute learning window. Population models are leave-one-patient-out for the DS1 records
(``--models`` keeps them, as ``benchmarks/mitdb.py`` does); the other records are scored by the
shipped population model, which never saw them.

1. **AF** (RR irregularity, and P waves where the rate leaves them readable) against the reference
   rhythm annotations (``(AFIB``, ``(AFL``): duration (beat-wise) and episode sensitivity /
   positive predictivity per record and gross over the records with AF (201, 203, 217), and the
   share of beats read as AF on the records without it.
2. **How the figures move with the analyser's constants**: window and RR threshold over a grid, then
   the P-wave threshold (:class:`~ecgedge.analysis.atrial.AtrialActivity`; none: the RR series
   alone), and each threshold chosen leave-one-patient-out: for each record, the value of the grid
   with the best beat-wise F1 on the other records, applied to it.
3. **Noise**: records 100, 119 and 208 (first 10 minutes) with muscle, electrode-motion and the QRS
   benchmark's mixed noise at 12 / 6 / 0 dB (:func:`ecgedge.datasets.add_noise`): the share of
   beats in noisy stretches, and the N and false beats flagged with the noise rule and without it.
4. **Cost** of judging one beat with a full patient memory (2,048 beats), and of the rhythm
   analyser alone.

    python benchmarks/rhythm.py [WFDB_DIR] [--models DIR] [--tag TAG]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ecgedge.analysis.ec57 import nearest_reference
from ecgedge.analysis.judge import BeatJudge, BeatView
from ecgedge.analysis.noise import NoiseTracker
from ecgedge.analysis.offline import cut_stream
from ecgedge.analysis.rhythm import RhythmAnalyser
from ecgedge.arrhythmia import format_rhythm_report, judge_records, rhythm_report
from ecgedge.datasets import AnnotatedBeats, add_noise, load_annotated_beats, load_wfdb_record
from ecgedge.evaluation import AF_RHYTHMS, af_report
from ecgedge.population import DS1, POPULATION_FORMAT

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mitdb import _pct, default_directory, population_model  # noqa: E402
from results_file import machine, write_results  # noqa: E402

LEARNING_S = 300.0
AF_RECORDS = ("201", "203", "217")
WINDOWS = (8, 16, 24)
THRESHOLDS = (0.06, 0.08, 0.1, 0.12, 0.14)
ATRIAL_THRESHOLDS = (None, 0.3, 0.4, 0.5, 0.6, 0.7)
NOISE_RECORDS = ("100", "119", "208")
NOISE_KINDS = {"muscle": ("muscle",), "motion": ("motion",), "mixed": ("wander", "mains", "muscle")}
SNRS = (12.0, 6.0, 0.0)


def read_beats(directory: Path) -> AnnotatedBeats:
    """The bridge's beats of every record; records without an MLII lead on their first lead."""
    import wfdb

    names = sorted(p.stem for p in directory.glob("*.hea") if p.stem.isdigit())
    first_lead = [n for n in names if "MLII" not in wfdb.rdheader(str(directory / n)).sig_name]
    parts = [
        load_annotated_beats(
            directory, POPULATION_FORMAT, records=[n for n in names if n not in first_lead], positions="bridge"
        )
    ]
    if first_lead:
        parts.append(load_annotated_beats(directory, POPULATION_FORMAT, records=first_lead, lead=0, positions="bridge"))
    return AnnotatedBeats(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in vars(parts[0])})


def scores_of(beats: AnnotatedBeats, models: Path | None) -> tuple[np.ndarray, dict]:
    """Each beat's population score (LOPO for DS1 records) and each record's threshold."""
    from ecgedge import load
    from ecgedge.models import population_model_path

    shipped = load(population_model_path())
    ds1 = beats[np.isin(beats.record, DS1)]
    scores, offsets = np.empty(len(beats)), {}
    for name in beats.records:
        model = population_model(ds1, name, models) if name in DS1 else shipped
        mine = beats.record == name
        scores[mine], offsets[name] = model.score_samples(beats.X[mine]), float(model.offset_)
    return scores, offsets


def judge_all(beats: AnnotatedBeats, scores: np.ndarray, offsets: dict):
    parts = {
        n: judge_records(
            beats[beats.record == n],
            scores[beats.record == n],
            offsets[n],
            adapt_s=LEARNING_S,
            beat_format=POPULATION_FORMAT,
        )
        for n in beats.records
    }
    from ecgedge.arrhythmia import Verdicts

    return Verdicts(
        *(np.concatenate([getattr(parts[n], f) for n in beats.records]) for f in Verdicts.__dataclass_fields__)
    )


def af_counts(beats: AnnotatedBeats, scores: np.ndarray, offsets: dict) -> dict:
    """Per record (reference AF & read AF, read AF only, reference AF only, beats) for each setting.

    Keys: ``(window, threshold, atrial_threshold)``; the RR grid at the default P-wave threshold, and
    the P-wave thresholds at the default window and RR threshold.
    """
    defaults = RhythmAnalyser.__init__.__defaults__
    window, threshold, atrial = defaults
    settings = [(w, t, atrial) for w in WINDOWS for t in THRESHOLDS]
    settings += [(window, threshold, a) for a in ATRIAL_THRESHOLDS if a != atrial]
    grid = {}
    try:
        for setting in settings:
            RhythmAnalyser.__init__.__defaults__ = setting
            verdicts = judge_all(beats, scores, offsets)
            reference, read = np.isin(beats.rhythm, AF_RHYTHMS), verdicts.rhythm == "af"
            grid[setting] = {
                n: [
                    int(np.sum(m & reference & read)),
                    int(np.sum(m & ~reference & read)),
                    int(np.sum(m & reference & ~read)),
                    int(m.sum()),
                ]
                for n in beats.records
                for m in [beats.record == n]
            }
            print(f"rhythm setting {setting}", flush=True)
    finally:
        RhythmAnalyser.__init__.__defaults__ = defaults
    return grid


def _se_p(rows: list[list[int]]) -> tuple[float, float]:
    tp, fp, fn = (sum(r[i] for r in rows) for i in range(3))
    return tp / max(tp + fn, 1), tp / max(tp + fp, 1)


def _lopo(grid: dict, settings: list, records: list[str], vary: int) -> dict:
    """For each record, the setting with the best beat-wise F1 on the other records, applied to it.

    ``vary``: the index of the constant the settings differ in, reported as ``chosen``.
    """

    def f1(setting, name: str) -> float:
        se, p = _se_p([grid[setting][n] for n in records if n != name])
        return 2 * se * p / max(se + p, 1e-9)

    chosen = {name: max(settings, key=lambda s: f1(s, name)) for name in records}
    rows = {name: grid[chosen[name]][name] for name in records}
    se, p = _se_p([rows[n] for n in AF_RECORDS if n in rows])
    worst = max(rows[n][1] / rows[n][3] for n in records if n not in AF_RECORDS)
    return {"chosen": sorted({str(s[vary]) for s in chosen.values()}), "se": se, "p": p, "non_af_max": worst}


def summarise_grid(grid: dict, records: list[str]) -> dict:
    out = {}
    for setting, rows in grid.items():
        se, p = _se_p([rows[n] for n in AF_RECORDS if n in rows])
        over = sorted(n for n in records if n not in AF_RECORDS and rows[n][1] > 0.01 * rows[n][3])
        out[",".join(map(str, setting))] = {"se": se, "p": p, "non_af_over_1pct": over}
    window, threshold, atrial = RhythmAnalyser.__init__.__defaults__
    rr = _lopo(grid, [(window, t, atrial) for t in THRESHOLDS], records, vary=1)
    p_wave = _lopo(grid, [(window, threshold, a) for a in ATRIAL_THRESHOLDS], records, vary=2)
    return {"grid": out, "lopo_threshold": rr, "lopo_atrial_threshold": p_wave}


def noise_run(models: Path | None) -> list[dict]:
    from ecgedge import load
    from ecgedge.models import population_model_path

    shipped, rows = load(population_model_path()), []
    for name in NOISE_RECORDS:
        record = load_wfdb_record(default_directory() / name, lead="MLII")
        signal = record.signal[: 600 * round(record.fs)]
        for kind, kinds in NOISE_KINDS.items():
            for snr in SNRS:
                beats = cut_stream(
                    add_noise(signal, record.fs, snr, kinds, seed=int(name)), record.fs, POPULATION_FORMAT
                )
                samples = np.array([b.sample for b in beats])
                nearest = nearest_reference(samples, record.beat_samples, round(0.15 * record.fs))
                symbol = np.where(nearest >= 0, record.beat_symbols[np.maximum(nearest, 0)], "-")
                scores = shipped.score_samples(np.stack([b.model_input for b in beats]))
                row = {
                    "record": name,
                    "noise": kind,
                    "snr_db": snr,
                    "beats": len(beats),
                    "false_beats": int((symbol == "-").sum()),
                }
                for rule, tracker in (("with", NoiseTracker()), ("without", NoiseTracker(threshold=np.inf))):
                    judge = BeatJudge(adapt_s=120.0, noise=tracker, beat_format=POPULATION_FORMAT)
                    verdicts = [judge.judge(s, shipped.offset_, b) for s, b in zip(scores.tolist(), beats, strict=True)]
                    judged = np.array([v.mode == "adapted" for v in verdicts])
                    flagged = np.array([v.anomaly for v in verdicts])
                    row[f"noisy_share_{rule}"] = float(np.mean([v.quality == "noisy" for v in verdicts]))
                    judged_n = flagged[judged & (symbol == "N")]
                    row[f"n_flagged_{rule}"] = float(judged_n.mean()) if judged_n.size else None
                    row[f"false_flagged_{rule}"] = int((flagged & judged & (symbol == "-")).sum())
                rows.append(row)
                print(f"noise {name} {kind} {snr:g} dB", flush=True)
    return rows


def cost(beats: AnnotatedBeats, scores: np.ndarray, offsets: dict, repeats: int = 3) -> dict:
    """Microseconds per beat: the judge with a full memory, and the rhythm analyser alone."""
    mine = beats.record == "208"
    views = [
        BeatView(*v)
        for v in zip(
            beats.X[mine],
            beats.rr_before[mine],
            beats.sample[mine],
            beats.own_length[mine],
            beats.noise[mine],
            beats.atrial[mine],
            beats.rr_after[mine],
            strict=True,
        )
    ]
    sc = scores[mine].tolist()
    judge = BeatJudge(adapt_s=1e9, beat_format=POPULATION_FORMAT)
    for s, v in zip(sc[:400], views[:400], strict=True):
        judge.judge(s, offsets["208"], v)
    judge.memory.close()
    while judge.memory.beats_.shape[0] < judge.memory.max_beats:  # fill it: the worst case
        judge.memory.absorb(judge.memory.beats_, np.zeros(len(judge.memory.beats_)))
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        for s, v in zip(sc, views, strict=True):
            judge.judge(s, offsets["208"], v)
        timings.append((time.perf_counter() - started) / len(views))
    analyser, rr = RhythmAnalyser(), beats.rr_before[mine].tolist()
    rhythm = []
    for _ in range(repeats):
        started = time.perf_counter()
        for r, segment in zip(rr, beats.atrial[mine], strict=True):
            analyser.add(r, atrial=segment)
        rhythm.append((time.perf_counter() - started) / len(rr))
    return {
        "judge_us_per_beat": 1e6 * min(timings),
        "rhythm_us_per_beat": 1e6 * min(rhythm),
        "memory_beats": int(judge.memory.beats_.shape[0]),
        "beats_timed": len(views),
    }


def shared_run(doc: str) -> tuple[argparse.Namespace, AnnotatedBeats, np.ndarray, dict]:
    """What a benchmark over the shared records starts from: its command line (the WFDB folder,
    ``--models``, ``--tag``), every record's beats and their scores (:func:`read_beats`, :func:`scores_of`)."""
    import torch

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, default=default_directory())
    parser.add_argument("--models", type=Path, default=None, help="keep (and reuse) the LOPO population models here")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    beats = read_beats(args.directory)
    return (args, beats, *scores_of(beats, args.models))


def main() -> None:

    started = time.time()
    args, beats, scores, offsets = shared_run(__doc__)
    verdicts = judge_all(beats, scores, offsets)
    report = rhythm_report(beats, verdicts)
    af = beats[np.isin(beats.record, AF_RECORDS)]
    reference = np.isin(af.rhythm, AF_RHYTHMS)
    af_gross = af_report(af.record, reference, verdicts.rhythm[np.isin(beats.record, AF_RECORDS)] == "af")
    grid = summarise_grid(af_counts(beats, scores, offsets), beats.records)
    results = {
        "machine": machine(numpy=np.__version__),
        "settings": {
            "directory": str(args.directory),
            "learning_s": LEARNING_S,
            "window": RhythmAnalyser().window,
            "threshold": RhythmAnalyser().threshold,
            "atrial_threshold": RhythmAnalyser().atrial_threshold,
            "noise_threshold": NoiseTracker().threshold,
        },
        "rhythm": report,
        "af_records": af_gross,
        "sweep": grid,
        "noise": noise_run(args.models),
        "cost": cost(beats, scores, offsets),
    }
    results["seconds"] = time.time() - started
    text = markdown(results)
    write_results("rhythm", results, text, tag=args.tag)
    print(text)


def markdown(r: dict) -> str:
    m, s, af = r["machine"], r["settings"], r["af_records"]
    per = r["rhythm"]["per_record"]
    non_af = {n: x["af_share_detected"] for n, x in per.items() if n not in AF_RECORDS}
    lines = [
        f"MIT-BIH, {len(per)} shared records; the bridge's beats, judged with a {s['learning_s']:.0f} s learning "
        f"window; rhythm window {s['window']} beats, threshold {s['threshold']}, P-wave threshold "
        f"{s['atrial_threshold']}; noise threshold {s['noise_threshold']}.",
        f"Machine: {m['platform']}, {m['cpus']} CPUs, load {tuple(round(x, 1) for x in m['load_avg'])}; python "
        f"{m['python']}, ecgedge {m['ecgedge']}, numpy {m['numpy']}; {r['seconds']:.0f} s.",
        "",
        f"AF on the records with AF ({', '.join(AF_RECORDS)}): duration Se {_pct(af['duration_se'])}, +P "
        f"{_pct(af['duration_p'])}; episodes Se {_pct(af['episode_se'])} ({af['reference_episodes']}), +P "
        f"{_pct(af['episode_p'])} ({af['detected_episodes']}). Records without AF: beats read as AF at most "
        f"{_pct(max(non_af.values()))}; over 1 %: {', '.join(n for n, v in non_af.items() if v > 0.01) or 'none'}.",
        "",
        format_rhythm_report(r["rhythm"]),
        "",
        "AF on the records with AF over the analyser's constants (window in beats, RR threshold, P-wave threshold; "
        "None: the RR series alone), and the records without AF read as AF for more than 1 % of their beats:",
        "",
        "| window | RR threshold | P-wave threshold | AF duration Se | AF duration +P | records without AF over 1 % |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for key, g in r["sweep"]["grid"].items():
        window, threshold, atrial = key.split(",")
        lines.append(
            f"| {window} | {threshold} | {atrial} | {_pct(g['se'])} | {_pct(g['p'])} "
            f"| {', '.join(g['non_af_over_1pct']) or '-'} |"
        )
    lines.append("")
    for name, key in (("RR threshold", "lopo_threshold"), ("P-wave threshold", "lopo_atrial_threshold")):
        lopo = r["sweep"][key]
        lines.append(
            f"{name} fit leave-one-patient-out (the others at their defaults, best F1 on the other records): "
            f"chose {', '.join(lopo['chosen'])}; AF duration Se {_pct(lopo['se'])}, +P {_pct(lopo['p'])}; "
            f"records without AF read as AF at most {_pct(lopo['non_af_max'])}."
        )
    lines += [
        "",
        "Noise (first 10 min; flagged shares among the judged N beats; false beats: no reference beat within 150 ms):",
        "",
        "| record | noise | SNR | beats | false beats | noisy | N flagged (rule / no rule) | false beats flagged "
        "(rule / no rule) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in r["noise"]:
        lines.append(
            f"| {n['record']} | {n['noise']} | {n['snr_db']:g} dB | {n['beats']} | {n['false_beats']} "
            f"| {_pct(n['noisy_share_with'])} | {_pct(n['n_flagged_with'])} / {_pct(n['n_flagged_without'])} "
            f"| {n['false_flagged_with']} / {n['false_flagged_without']} |"
        )
    c = r["cost"]
    lines += [
        "",
        f"Cost per beat (record 208, memory of {c['memory_beats']} beats, best of 3): judge "
        f"{c['judge_us_per_beat']:.0f} us, rhythm analyser alone {c['rhythm_us_per_beat']:.1f} us.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
