"""Detection metrics with anomalies as the positive class."""

from __future__ import annotations

import numpy as np


def detection_report(is_anomaly: np.ndarray, scores: np.ndarray, offset: float) -> dict:
    """Summarise how well scores separate normal from abnormal beats.

    Parameters
    ----------
    is_anomaly : ndarray of shape (n_beats,), bool
        Ground truth, True for an abnormal beat.
    scores : ndarray of shape (n_beats,)
        ``score_samples`` output (higher is more normal).
    offset : float
        Threshold: beats scoring below it are flagged.

    Returns
    -------
    dict
        ``roc_auc``, ``average_precision``, ``confusion_matrix`` (rows: true
        normal / anomaly, columns: predicted normal / anomaly),
        ``normal_recall``, ``anomaly_recall``, ``balanced_accuracy``,
        ``precision``, ``f1``, ``threshold``, ``n_beats``.
    """
    from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

    is_anomaly = np.asarray(is_anomaly, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if is_anomaly.shape != scores.shape or scores.ndim != 1:
        raise ValueError(f"labels {is_anomaly.shape} and scores {scores.shape} must be equal 1-d shapes")
    if is_anomaly.all() or not is_anomaly.any():
        raise ValueError("need both normal and abnormal beats to evaluate detection")
    flagged = scores < offset
    cm = confusion_matrix(is_anomaly, flagged, labels=[False, True])
    (tn, fp), (fn, tp) = cm
    normal_recall = tn / (tn + fp)
    anomaly_recall = tp / (tp + fn)
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * anomaly_recall / (precision + anomaly_recall) if precision + anomaly_recall else 0.0
    return {
        "n_beats": int(len(scores)),
        "threshold": float(offset),
        "roc_auc": float(roc_auc_score(is_anomaly, -scores)),
        "average_precision": float(average_precision_score(is_anomaly, -scores)),
        "confusion_matrix": cm.tolist(),
        "normal_recall": float(normal_recall),
        "anomaly_recall": float(anomaly_recall),
        "balanced_accuracy": float((normal_recall + anomaly_recall) / 2),
        "precision": float(precision),
        "f1": float(f1),
    }
