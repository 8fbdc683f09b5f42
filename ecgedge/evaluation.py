"""Detection metrics with anomalies as the positive class."""

from __future__ import annotations

import numpy as np

from ecgedge.analysis.ec57 import episodes


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


#: The abnormal AAMI classes a detector is judged on; Q beats are left out, as EC57 leaves them out.
ABNORMAL_CLASSES = ("SVEB", "VEB", "F")


def aami_report(aami: np.ndarray, flagged: np.ndarray, scores: np.ndarray, hours: float) -> dict:
    """Arrhythmia-analyser statistics of flags on beats of known AAMI class (ANSI/AAMI EC57 style).

    Parameters
    ----------
    aami : ndarray of shape (n_beats,), str
        AAMI class of each scored beat (``"N"``, ``"SVEB"``, ``"VEB"``, ``"F"``, ``"Q"``).
    flagged : ndarray of shape (n_beats,), bool
        Whether the detector flagged the beat.
    scores : ndarray of shape (n_beats,)
        Normality scores (higher is more normal), for the ROC AUC.
    hours : float
        Hours of signal the beats were scored over (for false flags per hour).

    Returns
    -------
    dict
        ``n`` and ``flagged`` per class; ``se_SVEB``, ``se_VEB``, ``se_F``
        (share of each class flagged; None without such beats);
        ``n_flagged_share`` (share of N beats flagged); ``false_flags_per_hour``
        (flagged N beats per hour); ``positive_predictivity`` (flagged beats of
        an abnormal class over flagged N and abnormal beats; None without
        flags); ``auc`` (ROC AUC of abnormal vs N beats; None unless both
        occur).
    """
    from sklearn.metrics import roc_auc_score

    aami, flagged, scores = np.asarray(aami), np.asarray(flagged, dtype=bool), np.asarray(scores, dtype=float)
    if not aami.shape == flagged.shape == scores.shape:
        raise ValueError(f"classes {aami.shape}, flags {flagged.shape} and scores {scores.shape} must match")
    counts = {c: int(np.sum(aami == c)) for c in ("N", *ABNORMAL_CLASSES, "Q")}
    hits = {c: int(np.sum(flagged & (aami == c))) for c in counts}
    abnormal = np.isin(aami, ABNORMAL_CLASSES)
    judged = abnormal | (aami == "N")
    true_flags, all_flags = int(np.sum(flagged & abnormal)), int(np.sum(flagged & judged))
    both = abnormal.any() and (aami == "N").any()
    report = {
        "n": counts,
        "flagged": hits,
        **{f"se_{c}": hits[c] / counts[c] if counts[c] else None for c in ABNORMAL_CLASSES},
        "n_flagged_share": hits["N"] / counts["N"] if counts["N"] else None,
        "false_flags_per_hour": hits["N"] / hours if hours > 0 else None,
        "positive_predictivity": true_flags / all_flags if all_flags else None,
        "auc": float(roc_auc_score(abnormal[judged], -scores[judged])) if both else None,
    }
    return report


#: Reference rhythm annotations (MIT-BIH ``aux_note``) that the rhythm analyser's ``"af"`` stands for.
AF_RHYTHMS = ("(AFIB", "(AFL")


def af_report(record: np.ndarray, reference_af: np.ndarray, detected_af: np.ndarray) -> dict:
    """Atrial fibrillation detection against reference rhythm annotations, beat-wise and by episode.

    Beats are in stream order within each record. AF duration is counted in beats (the beats
    the reference puts in AF or flutter against those the detector does). An episode is a run of
    consecutive AF beats of a record; a reference episode is found when a detected episode shares
    a beat with it, and a detected episode is true when it shares a beat with a reference one
    (the overlap rule of ANSI/AAMI EC57 for episodes; :func:`ecgedge.analysis.ec57.episodes`).

    Parameters
    ----------
    record : ndarray of shape (n_beats,), str
    reference_af, detected_af : ndarray of shape (n_beats,), bool

    Returns
    -------
    dict
        ``duration_se``, ``duration_p`` (None without reference or detected AF beats),
        ``episode_se``, ``episode_p``, and the counts behind them.

    Examples
    --------
    >>> rec = np.array(["a"] * 6)
    >>> r = af_report(rec, np.array([0, 1, 1, 1, 0, 0], bool), np.array([0, 0, 1, 1, 1, 0], bool))
    >>> r["duration_se"], r["duration_p"], r["episode_se"]
    (0.6666666666666666, 0.6666666666666666, 1.0)
    """
    record, reference_af, detected_af = (
        np.asarray(record),
        np.asarray(reference_af, bool),
        np.asarray(detected_af, bool),
    )
    if not record.shape == reference_af.shape == detected_af.shape:
        raise ValueError(
            f"records {record.shape}, reference {reference_af.shape} and detections {detected_af.shape} must match"
        )
    both = int(np.sum(reference_af & detected_af))
    reference, detected = episodes(reference_af, record), episodes(detected_af, record)
    found = sum(bool(detected_af[a : b + 1].any()) for a, b in reference)
    true = sum(bool(reference_af[a : b + 1].any()) for a, b in detected)
    return {
        "reference_beats": int(reference_af.sum()),
        "detected_beats": int(detected_af.sum()),
        "duration_se": both / int(reference_af.sum()) if reference_af.any() else None,
        "duration_p": both / int(detected_af.sum()) if detected_af.any() else None,
        "reference_episodes": len(reference),
        "detected_episodes": len(detected),
        "episode_se": found / len(reference) if reference else None,
        "episode_p": true / len(detected) if detected else None,
    }
