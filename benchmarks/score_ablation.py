"""What each part of ecgedge's score contributes, on the ECG5000 UCR split.

Takes a fitted detector (default: the shipped model), computes the two parts
of its score (:func:`ecgedge.nn.score_parts`: the reconstruction error and the
distance to the nearest normal training beats) for the 4500 TEST beats and,
leave-one-out, for the training beats, then rebuilds the score with other
weights of the distance part (``distance_weight``; 0 = error only, inf =
distance only). For each it reports ROC AUC, balanced accuracy at the
``contamination="auto"`` threshold (median - ``AUTO_MADS`` robust standard
deviations of the leave-one-out training scores) and the best balanced accuracy any
threshold reaches (an upper bound that uses the test labels).

Usage: ``python benchmarks/score_ablation.py [MODEL]``. Writes
``benchmarks/results/score-ablation-<date>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0, float("inf"))


def parts(detector, X: np.ndarray, leave_one_out: bool):
    """Unscaled error and distance parts (tensors) of ``detector``'s score for beats ``X``."""
    import torch

    from ecgedge.nn import score_parts

    module = detector.module_.double().eval()
    with torch.inference_mode():
        return score_parts(module, torch.as_tensor(X, dtype=torch.float64), detector.loss, leave_one_out)


def badness(reference, error, distance, weight: float) -> np.ndarray:
    """Minus the score (higher = more abnormal) with the distance part weighted ``weight``."""
    import copy

    from ecgedge.nn import combine_parts

    if np.isinf(weight):
        return (distance / reference.scales[1]).numpy()
    reweighted = copy.copy(reference)  # the same memory and scales, another weight
    reweighted.distance_weight = weight
    return (-combine_parts(reweighted, error, distance)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", type=Path, default=None, help="Saved detector (default: the shipped model).")
    args = parser.parse_args()

    import sklearn
    import torch
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score, roc_curve

    from ecgedge import load
    from ecgedge.calibration import robust_threshold
    from ecgedge.datasets import load_ecg5000
    from ecgedge.detector import AUTO_MADS
    from ecgedge.models import default_model_path

    model = args.model or default_model_path()
    detector = load(model)
    X_train, y_train = load_ecg5000("train", return_X_y=True)
    X_test, y_test = load_ecg5000("test", return_X_y=True)
    anomaly = y_test != 1
    train_parts = parts(detector, X_train[y_train == 1], leave_one_out=True)
    test_parts = parts(detector, X_test, leave_one_out=False)
    reference = detector.module_.reference
    rows = []
    for weight in WEIGHTS:
        train_bad = badness(reference, *train_parts, weight)
        test_bad = badness(reference, *test_parts, weight)
        threshold = -robust_threshold(-train_bad, k=AUTO_MADS)
        fpr, tpr, _ = roc_curve(anomaly, test_bad)
        rows.append({
            "distance_weight": "inf" if np.isinf(weight) else weight,
            "roc_auc": float(roc_auc_score(anomaly, test_bad)),
            "balanced_accuracy_auto": float(balanced_accuracy_score(anomaly, test_bad > threshold)),
            "balanced_accuracy_best": float(np.max((tpr + 1 - fpr) / 2)),
        })
        print(rows[-1], flush=True)
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": str(model), "model_distance_weight": detector.distance_weight,
        "versions": {"torch": torch.__version__, "scikit-learn": sklearn.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "rows": rows,
    }
    lines = [
        f"# Score ablation ({report['date']})", "",
        f"Model: {model} (trained with distance_weight={detector.distance_weight}); ECG5000 UCR split, 4500 TEST beats. "
        f"Versions: {', '.join(f'{k} {v}' for k, v in report['versions'].items())}.", "",
        "| distance weight | ROC AUC | balanced acc. (auto threshold) | best balanced acc. (any threshold) |",
        "|---|---:|---:|---:|",
    ]
    names = {0.0: "0 (reconstruction error only)", "inf": "inf (distance only)"}
    for row in rows:
        name = names.get(row["distance_weight"], str(row["distance_weight"]))
        lines.append(f"| {name} | {row['roc_auc']:.4f} | {row['balanced_accuracy_auto']:.4f} | {row['balanced_accuracy_best']:.4f} |")
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"score-ablation-{dt.date.today().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
