"""Thresholds on the score (higher is more normal; ``score < threshold`` is an anomaly).

Every function takes plain numpy score arrays, so they work on scores from
``score_samples`` and from any runtime backend alike. The labelled rules
(best F1, Youden's J) sweep all distinct thresholds exactly instead of
sampling a grid.
"""

from __future__ import annotations

import numpy as np

MAD_TO_STD = 1.4826  # MAD of a normal distribution times this is its standard deviation


def as_scores(scores, name: str = "scores", min_size: int = 1) -> np.ndarray:
    """Validate a 1-D finite score array of at least ``min_size`` values."""
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size < min_size:
        raise ValueError(f"{name} needs at least {min_size} values, got {array.size}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return array


def _check_fraction(value: float, name: str, low: float, high: float) -> float:
    if not low < value <= high:
        raise ValueError(f"{name} must be in ({low}, {high}], got {value}")
    return float(value)


def contamination_threshold(scores, contamination: float) -> float:
    """Threshold flagging the lowest ``contamination`` share of ``scores``.

    The detector's own rule for a float ``contamination`` (the percentile of
    the training scores, linearly interpolated).

    Parameters
    ----------
    scores : array-like of shape (n,)
    contamination : float in (0, 0.5]

    Returns
    -------
    float
    """
    contamination = _check_fraction(contamination, "contamination", 0.0, 0.5)
    return float(np.percentile(as_scores(scores), 100.0 * contamination))


def false_alarm_threshold(normal_scores, target_far: float) -> float:
    """Highest threshold whose false-alarm rate on ``normal_scores`` is at most ``target_far``.

    With ``k = floor(target_far * n)``, the threshold is the ``k``-th
    smallest score, so at most ``k`` normal beats lie strictly below it.

    Parameters
    ----------
    normal_scores : array-like of shape (n,)
        Scores of beats known to be normal.
    target_far : float in (0, 1)
        Tolerated share of normal beats flagged.

    Returns
    -------
    float
    """
    target_far = _check_fraction(target_far, "target_far", 0.0, 1.0)
    if target_far == 1.0:
        raise ValueError("target_far must be below 1")
    ordered = np.sort(as_scores(normal_scores, "normal_scores"))
    return float(ordered[int(np.floor(target_far * len(ordered)))])


def mean_std_threshold(normal_scores, k: float = 3.0) -> float:
    """``mean - k * std`` of normal scores.

    On the reconstruction error (minus the score) this is the familiar
    "error above mean + k standard deviations" rule.
    """
    if not np.isfinite(k) or k < 0:
        raise ValueError(f"k must be a finite number >= 0, got {k}")
    scores = as_scores(normal_scores, "normal_scores", min_size=2)
    return float(scores.mean() - k * scores.std(ddof=1))


def robust_threshold(scores, k: float = 5.0) -> float:
    """``median - k * 1.4826 * MAD``: a tail threshold that a few abnormal beats barely move.

    This is the detector's ``contamination="auto"`` rule and the per-patient
    rule of :class:`~ecgedge.calibration.PatientCalibrator`.
    """
    if not np.isfinite(k) or k <= 0:
        raise ValueError(f"k must be a finite number > 0, got {k}")
    scores = as_scores(scores, min_size=2)
    median = np.median(scores)
    return float(median - k * MAD_TO_STD * np.median(np.abs(scores - median)))


def _sweep(scores, is_anomaly) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Every distinct threshold with the true and false positives it gives."""
    scores = as_scores(scores, min_size=2)
    labels = np.asarray(is_anomaly)
    if labels.shape != scores.shape:
        raise ValueError(f"is_anomaly must have the shape of scores {scores.shape}, got {labels.shape}")
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("is_anomaly must be boolean (or 0/1): True for abnormal beats")
        labels = labels.astype(bool)
    n_pos = int(labels.sum())
    if n_pos in (0, labels.size):
        raise ValueError("is_anomaly must contain both normal and abnormal beats")
    order = np.argsort(scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(scores) > 0), scores.size - 1]  # last index of each distinct score
    # A threshold just above distinct score i flags every beat up to it.
    above = np.r_[scores[last[:-1] + 1], np.nextafter(scores[-1], np.inf)]
    tp = np.cumsum(labels)[last]
    fp = (last + 1) - tp
    return above, tp, fp, n_pos, labels.size - n_pos


def best_f1_threshold(scores, is_anomaly) -> float:
    """Threshold maximising F1 with abnormal beats as the positive class.

    Parameters
    ----------
    scores : array-like of shape (n,)
    is_anomaly : array-like of bool, shape (n,)

    Returns
    -------
    float
        The threshold (``score < threshold`` flags); the smallest of tied best.
    """
    thresholds, tp, fp, n_pos, _ = _sweep(scores, is_anomaly)
    f1 = 2 * tp / (2 * tp + fp + (n_pos - tp))
    return float(thresholds[int(np.argmax(f1))])


def youden_threshold(scores, is_anomaly) -> float:
    """Threshold maximising Youden's J (sensitivity + specificity - 1).

    Parameters
    ----------
    scores : array-like of shape (n,)
    is_anomaly : array-like of bool, shape (n,)

    Returns
    -------
    float
    """
    thresholds, tp, fp, n_pos, n_neg = _sweep(scores, is_anomaly)
    return float(thresholds[int(np.argmax(tp / n_pos - fp / n_neg))])
