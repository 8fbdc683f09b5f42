"""ecgedge's defaults on another source and beat length: MIT-BIH record 100, 187-sample beats.

Nothing in the detector assumes ECG5000's 140 samples. This cuts every
annotated beat of MIT-BIH record 100 (MLII, 360 Hz, causal 0.5-40 Hz
band-pass) the way the bridge does, at 187 samples (not a multiple of the
4-sample frames), fits ``LSTMAutoencoderDetector()`` with its defaults on the
normal (N) beats of the first half and scores every beat of the second half:
ROC AUC of abnormal (non-N) against N beats, and the share of each flagged at
the ``contamination="auto"`` threshold.

Usage: ``python benchmarks/other_source.py [--length 187]``. Writes
``benchmarks/results/other-source-<date>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform

import numpy as np
from results_file import write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=187, help="Samples per beat.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import sklearn
    import torch
    from sklearn.metrics import roc_auc_score

    from ecgedge import LSTMAutoencoderDetector
    from ecgedge.beatformat import BeatFormat
    from ecgedge.datasets import cut_annotated_beats, load_wfdb_record

    X, labels = cut_annotated_beats(load_wfdb_record(), BeatFormat(length=args.length))
    half = len(X) // 2
    train, test, test_labels = X[:half][labels[:half] == "N"], X[half:], labels[half:]
    detector = LSTMAutoencoderDetector(random_state=args.seed).fit(train)
    scores, abnormal = detector.score_samples(test), test_labels != "N"
    flagged = scores < detector.offset_
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": {**vars(args), "detector": "LSTMAutoencoderDetector() defaults", "device": detector.device_},
        "versions": {
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "machine": f"{platform.platform()}, {torch.get_num_threads()} torch threads",
        "train_beats": int(len(train)),
        "test_beats": {str(k): int(v) for k, v in zip(*np.unique(test_labels, return_counts=True), strict=True)},
        "fit_seconds": detector.fit_time_,
        "best_epoch": detector.best_epoch_,
        "roc_auc": float(roc_auc_score(abnormal, -scores)),
        "normal_flagged": float(flagged[~abnormal].mean()),
        "abnormal_flagged": float(flagged[abnormal].mean()),
    }
    r = result
    lines = [
        f"# Another source and length: MIT-BIH record 100 ({r['date']})",
        "",
        f"Machine: {r['machine']}. Versions: {', '.join(f'{k} {v}' for k, v in r['versions'].items())}.",
        f"{args.length}-sample beats; fit with the defaults (seed {args.seed}) on the {r['train_beats']} N beats of "
        f"the first half, scored on the second half: {r['test_beats']}.",
        "",
        "| ROC AUC (non-N vs N) | N beats flagged | non-N beats flagged | fit s | best epoch |",
        "|---:|---:|---:|---:|---:|",
        f"| {r['roc_auc']:.4f} | {r['normal_flagged']:.1%} | {r['abnormal_flagged']:.1%} | "
        f"{r['fit_seconds']:.1f} | {r['best_epoch']} |",
    ]
    write_results("other-source", result, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
