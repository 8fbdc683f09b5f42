"""Arrhythmia detection on unseen patients: MIT-BIH records judged as arrhythmia analysers are.

Every record of a WFDB directory (default: the shared MIT-BIH records of the inter-patient training
set DS1, de Chazal et al. 2004), lead MLII, annotated beat positions (this run separates scoring from
beat finding: the bridge's own R peaks are not used here). Per record the first five minutes are the
learning window, as on the bedside device; the beats after it are scored. Population models are fit
on the N beats of the *other* records only (leave-one-patient-out), so every number is one on a
patient the model never saw. Labels choose the normal beats a population model is fit on and score
the results; thresholds use none.

Methods, each at its own threshold rule (no labels):

- ``shipped ECG5000 model + patient threshold``: what ``ecgedge bridge --calibrate`` does today: the
  shipped model (one patient, ECG5000), its score on the beats as the bridge cuts them (RR-scaled
  window), the threshold 5 robust standard deviations below the median of the learning window's
  scores (``PatientCalibrator``).
- ``IsolationForest`` / ``LocalOutlierFactor`` fit per patient on the learning window's beats (all of
  them: the device does not know which are normal), default thresholds.
- ``population kNN``: mean distance to the 5 nearest N beats of the other DS1 patients; threshold at
  the 99th percentile of those beats' own leave-one-out distances.
- ``population LSTM autoencoder``: ``LSTMAutoencoderDetector(standardize=False)`` fit on N beats of the
  other patients, ``contamination="auto"``.
- ``population kNN + patient memory``: ``ecgedge.calibration.PatientMemory``, the device's patient
  adaptation: the learning window's beats that the population kNN accepts become the patient's
  memory; a beat is scored by its distance to that memory, flagged above twice the 99th percentile of
  the memory's leave-one-out distances. That rule was chosen on these DS1 records, so its figures
  are development figures, optimistic by an unknown margin.

The kNN, forest and memory methods read ``ecgedge.calibration.beat_features``: a window fixed in time
(250 ms before to 400 ms after R at 90 Hz, in mV about the window's median, keeping QRS width and
amplitude) plus the RR before and after over the mean of the last 10 RR intervals
(``RhythmContext``), weighted 3.

    python benchmarks/mitdb.py [WFDB_DIR] [--records 101 106 ...] [--no-lstm]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ecgedge.beatformat import BeatFormat
from ecgedge.calibration import PatientMemory, RhythmContext, beat_features
from ecgedge.datasets import AnnotatedBeats, load_annotated_beats
from ecgedge.evaluation import aami_report

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import write_results  # noqa: E402

DS1 = "101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split()
LEARNING_S = 300.0
FIXED = BeatFormat(length=59, before_r=0.25, after_r=0.40, source_fs=360.0, r_polarity=1, window_unit="s")


def default_directory() -> Path:
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"


def features(beats: AnnotatedBeats) -> np.ndarray:
    """:func:`ecgedge.calibration.beat_features` of every beat, its rhythm followed record by record."""
    ratios = np.empty((len(beats), 2))
    for name in beats.records:
        rhythm = RhythmContext()
        for row in np.flatnonzero(beats.record == name):
            before = rhythm.ratio(beats.rr_before[row])
            after = beats.rr_after[row] if np.isfinite(beats.rr_after[row]) else rhythm.mean
            ratios[row] = before, after / rhythm.mean
    return beat_features(beats.X, ratios)


def knn_distance(reference: np.ndarray, queries: np.ndarray, k: int, *, leave_one_out: bool = False) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    distances, _ = NearestNeighbors(n_neighbors=k + leave_one_out).fit(reference).kneighbors(queries)
    return distances[:, int(leave_one_out):].mean(axis=1)


def population_rows(beats: AnnotatedBeats, record: str, per_record: int, rng) -> np.ndarray:
    """Indices of up to ``per_record`` N beats of every record but ``record``."""
    rows = []
    for name in beats.records:
        if name != record:
            normal = np.flatnonzero((beats.record == name) & (beats.aami == "N"))
            rows.append(rng.permutation(normal)[:per_record])
    return np.concatenate(rows)


def run_record(record, rr_beats, fixed_beats, F, shipped, args, rng) -> tuple[np.ndarray, dict]:
    """AAMI classes of one record's scored beats, and each method's (scores, flags) on them.

    Scores are higher for more normal beats. The scored beats are those after the learning window
    that both cuts (the shipped model's and the fixed window) produced.
    """
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor

    from ecgedge.calibration import robust_threshold

    out = {}
    mine = fixed_beats.record == record
    learn, scored = mine & (fixed_beats.time < LEARNING_S), mine & (fixed_beats.time >= LEARNING_S)
    rr_mine = rr_beats.record == record
    shipped_scores = shipped.score_samples(rr_beats.X[rr_mine])
    threshold = robust_threshold(shipped_scores[rr_beats.time[rr_mine] < LEARNING_S], k=5.0)
    score_at = dict(zip(rr_beats.sample[rr_mine].tolist(), shipped_scores))
    keep = np.isin(fixed_beats.sample[scored], rr_beats.sample[rr_mine])
    scores = np.array([score_at.get(s, np.nan) for s in fixed_beats.sample[scored].tolist()])
    out["shipped ECG5000 model + patient threshold"] = (scores, scores < threshold)

    for name, model in (("IsolationForest per patient", IsolationForest(random_state=0)),
                        ("LocalOutlierFactor per patient", LocalOutlierFactor(novelty=True))):
        model.fit(F[learn])
        out[name] = (model.decision_function(F[scored]), model.predict(F[scored]) == -1)

    population = population_rows(fixed_beats, record, args.per_record, rng)
    reference = F[population]
    pop_threshold = np.percentile(knn_distance(reference, reference, 5, leave_one_out=True), 99)
    pop_learn, pop_scored = knn_distance(reference, F[learn], 5), knn_distance(reference, F[scored], 5)
    out["population kNN"] = (-pop_scored, pop_scored > pop_threshold)

    memory = PatientMemory()
    memory.learn(F[learn], accepted=pop_learn <= pop_threshold, scores=-pop_learn)
    memory.close()
    patient = memory.distance(F[scored])
    out["population kNN + patient memory"] = (-patient, patient > memory.threshold)

    if not args.no_lstm:
        from ecgedge import LSTMAutoencoderDetector

        detector = LSTMAutoencoderDetector(standardize=False, max_epochs=args.lstm_epochs, random_state=0,
                                           device="cpu").fit(fixed_beats.X[population])
        lstm = detector.score_samples(fixed_beats.X[scored])
        out["population LSTM autoencoder"] = (lstm, lstm < detector.offset_)
    classes = fixed_beats.aami[scored][keep]
    return classes, {name: (s[keep], f[keep]) for name, (s, f) in out.items()}


def main() -> None:
    import sklearn
    import torch

    from ecgedge import __version__, load
    from ecgedge.models import default_model_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, default=default_directory())
    parser.add_argument("--records", nargs="*", default=DS1)
    parser.add_argument("--per-record", type=int, default=300, help="N beats per other record in a population")
    parser.add_argument("--lstm-epochs", type=int, default=30)
    parser.add_argument("--no-lstm", action="store_true", help="skip the population LSTM autoencoder")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    shipped = load(default_model_path())
    rr_format = BeatFormat(length=shipped.n_features_in_)  # the shipped model's own cut (ECG5000)
    rr_beats = load_annotated_beats(args.directory, rr_format, records=args.records, flip=True)
    fixed_beats = load_annotated_beats(args.directory, FIXED, records=args.records)
    F = features(fixed_beats)
    rng = np.random.RandomState(0)
    per_method: dict[str, list] = {}
    per_record: dict[str, dict] = {}
    for record in args.records:
        classes, results = run_record(record, rr_beats, fixed_beats, F, shipped, args, rng)
        hours = (fixed_beats.time[fixed_beats.record == record].max() - LEARNING_S) / 3600
        per_record[record] = {}
        for name, (scores, flags) in results.items():
            per_method.setdefault(name, []).append((classes, flags, scores, hours))
            per_record[record][name] = aami_report(classes, flags, scores, hours)
        print(record, {name: round(r["auc"], 3) if r["auc"] is not None else None
                       for name, r in per_record[record].items()}, flush=True)
    gross = {}
    for name, parts in per_method.items():
        classes, flags, scores = (np.concatenate([p[i] for p in parts]) for i in range(3))
        report = aami_report(classes, flags, scores, sum(p[3] for p in parts))
        aucs = [per_record[r][name]["auc"] for r in args.records if per_record[r][name]["auc"] is not None]
        report["median_record_auc"] = float(np.median(aucs)) if aucs else None
        gross[name] = report
    settings = {"directory": str(args.directory), "records": args.records, "learning_s": LEARNING_S,
                "per_record": args.per_record, "lstm_epochs": None if args.no_lstm else args.lstm_epochs,
                "fixed_format": FIXED.to_dict()}
    machine = {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
               "load_avg": os.getloadavg(), "python": platform.python_version(), "ecgedge": __version__,
               "torch": torch.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__}
    report = {"machine": machine, "settings": settings, "gross": gross, "per_record": per_record,
              "seconds": time.time() - started}
    write_results("mitdb", report, markdown(report), tag=args.tag)
    print(markdown(report))


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def markdown(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    lines = [
        f"MIT-BIH, {len(s['records'])} records, MLII, annotated beat positions; first {s['learning_s']:.0f} s "
        "of each record learning, the rest scored; population models leave-one-patient-out.",
        f"Machine: {m['platform']}, {m['cpus']} CPUs, load {tuple(round(x, 1) for x in m['load_avg'])}; "
        f"python {m['python']}, ecgedge {m['ecgedge']}, torch {m['torch']}, scikit-learn {m['sklearn']}; "
        f"{report['seconds']:.0f} s.",
        "",
        "| method | VEB Se | SVEB Se | F Se | N flagged | false flags / h | flag +P | gross AUC | median record AUC |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, g in report["gross"].items():
        lines.append(
            f"| {name} | {_pct(g['se_VEB'])} | {_pct(g['se_SVEB'])} | {_pct(g['se_F'])} | {_pct(g['n_flagged_share'])} "
            f"| {g['false_flags_per_hour']:.0f} | {_pct(g['positive_predictivity'])} | {g['auc']:.3f} "
            f"| {g['median_record_auc']:.3f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
