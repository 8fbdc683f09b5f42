"""What each part of ecgedge's score contributes, on the ECG5000 UCR split.

Takes a fitted detector (default: the shipped model), keeps its trained
autoencoder and rebuilds the score's reference on the 292 normal beats of
ECG5000_TRAIN with other settings: the weight of the distance part
(``distance_weight``; 0 = reconstruction error only, inf = distance only),
the beats per local patch (``patch_size``; 1 = plain nearest-beat distance)
and the patches' shrinkage (``ridge``). For each it reports ROC AUC on the
4500 TEST beats, balanced accuracy at the ``contamination="auto"`` threshold
(median - ``AUTO_MADS`` robust standard deviations of the leave-one-out
training scores) and the best balanced accuracy any threshold reaches (an
upper bound that uses the test labels). It also checks calibration: a 1 %
false-alarm target set on the training beats' leave-one-out scores (what
``ecgedge calibrate --normal training`` uses) and on the same beats scored
as they are, each judged by the share of TEST normal beats it flags.

Usage: ``python benchmarks/score_ablation.py [MODEL]``. Writes
``benchmarks/results/score-ablation-<date>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import platform
from pathlib import Path

import numpy as np
from results_file import write_results

VARIANTS = {
    "distance_weight": (0.0, 1.0, 2.0, 4.0, 8.0, float("inf")),
    "patch_size": (1, 2, 3, 4, 6, 8),
    "ridge": (0.0, 0.05, 0.1, 0.2, 0.5, 1.0),
}
_DISTANCE_ONLY = 1e9  # the error part's weight vanishes next to it


def evaluate(detector, setting: str, value, X_normal: np.ndarray, X_test: np.ndarray, anomaly: np.ndarray) -> dict:
    """Rebuild ``detector``'s reference with one setting changed; score the test beats."""
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score, roc_curve

    from ecgedge.calibration import robust_threshold
    from ecgedge.detector import AUTO_MADS

    variant = copy.deepcopy(detector).set_params(**{setting: _DISTANCE_ONLY if value == float("inf") else value})
    threshold = robust_threshold(variant._attach_reference(X_normal), k=AUTO_MADS)  # noqa: SLF001 (same package)
    scores = variant.score_samples(X_test)
    fpr, tpr, _ = roc_curve(anomaly, -scores)
    return {
        "setting": setting,
        "value": "inf" if value == float("inf") else value,
        "roc_auc": float(roc_auc_score(anomaly, -scores)),
        "balanced_accuracy_auto": float(balanced_accuracy_score(anomaly, scores < threshold)),
        "balanced_accuracy_best": float(np.max((tpr + 1 - fpr) / 2)),
    }


def held_out_false_alarms(detector, X_normal: np.ndarray, X_test_normal: np.ndarray, target: float = 0.01) -> dict:
    """Share of held-out normal beats flagged by a ``target`` false-alarm threshold set two ways."""
    from ecgedge.calibration import false_alarm_threshold

    held_out = detector.score_samples(X_test_normal)
    rates = {}
    for name, scores in (
        ("leave_one_out", detector.module_.reference.training_scores.numpy().astype(float)),
        ("in_sample", detector.score_samples(X_normal)),
    ):
        rates[name] = float(np.mean(held_out < false_alarm_threshold(scores, target)))
    return {"target_far": target, "held_out_far": rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "model", nargs="?", type=Path, default=None, help="Saved detector (default: the shipped model)."
    )
    args = parser.parse_args()

    import sklearn
    import torch

    from ecgedge import load
    from ecgedge.datasets import load_ecg5000
    from ecgedge.models import default_model_path

    model = args.model or default_model_path()
    detector = load(model)
    X_train, y_train = load_ecg5000("train", return_X_y=True)
    X_test, y_test = load_ecg5000("test", return_X_y=True)
    rows = []
    for setting, values in VARIANTS.items():
        for value in values:
            rows.append(evaluate(detector, setting, value, X_train[y_train == 1], X_test, y_test != 1))
            print(rows[-1], flush=True)
    calibration = held_out_false_alarms(detector, X_train[y_train == 1], X_test[y_test == 1])
    defaults = {setting: getattr(detector, setting) for setting in VARIANTS}
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": str(model),
        "model_settings": defaults,
        "versions": {
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "rows": rows,
        "calibration": calibration,
    }
    lines = [
        f"# Score ablation ({report['date']})",
        "",
        f"Model: {model} (its autoencoder; reference rebuilt per row on the 292 normal ECG5000_TRAIN beats, "
        f"one setting changed from {defaults}); ECG5000 UCR split, 4500 TEST beats. "
        f"Versions: {', '.join(f'{k} {v}' for k, v in report['versions'].items())}.",
        "",
        "| setting | value | ROC AUC | balanced acc. (auto threshold) | best balanced acc. (any threshold) |",
        "|---|---|---:|---:|---:|",
    ]
    names = {
        ("distance_weight", 0.0): "0 (reconstruction error only)",
        ("distance_weight", "inf"): "inf (distance only)",
        ("patch_size", 1): "1 (nearest beats)",
    }
    for row in rows:
        name = names.get((row["setting"], row["value"]), str(row["value"]))
        default = " (default)" if row["value"] == defaults[row["setting"]] else ""
        lines.append(
            f"| {row['setting']} | {name}{default} | {row['roc_auc']:.4f} | "
            f"{row['balanced_accuracy_auto']:.4f} | {row['balanced_accuracy_best']:.4f} |"
        )
    far = calibration["held_out_far"]
    lines += [
        "",
        f"Calibration, {calibration['target_far']:.0%} false-alarm target on the shipped model's training beats: "
        f"set on their leave-one-out scores it flags {far['leave_one_out']:.2%} of the 2627 TEST normal beats; "
        f"set on the same beats scored as they are, {far['in_sample']:.2%}.",
    ]
    write_results("score-ablation", report, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
