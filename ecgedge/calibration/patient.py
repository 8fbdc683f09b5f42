"""Per-patient calibration: a threshold from the first beats of a live stream.

Runs on the device, so it needs numpy only.
"""

from __future__ import annotations

import numpy as np

from ecgedge.calibration.thresholds import as_scores, robust_threshold


class PatientCalibrator:
    """Collect the first ``n_beats`` scores of a patient and set a robust threshold.

    Until ``n_beats`` scores have been seen, :attr:`threshold` is the
    ``fallback`` (normally the bundle's). Then it becomes
    ``median - k * 1.4826 * MAD`` of those scores: median and MAD ignore a
    few abnormal beats in the calibration window (up to nearly half), where
    a mean and standard deviation would be dragged down by them. With
    ``floor`` set, the patient threshold is never below it, so a stream
    that starts with many abnormal beats cannot silence the alarm.

    Parameters
    ----------
    n_beats : int, default=120
        Beats to collect (about two minutes at 60 bpm).
    k : float, default=5.0
        Robust standard deviations below the median.
    fallback : float or None, default=None
        Threshold reported before calibration completes.
    floor : float or None, default=None
        Lowest threshold the calibration may set.

    Examples
    --------
    >>> cal = PatientCalibrator(n_beats=3, k=5.0, fallback=-1.0)
    >>> cal.update([-0.10, -0.12])
    >>> cal.threshold, cal.ready
    (-1.0, False)
    >>> round(cal.update([-0.11, -0.50]), 4)
    -0.1841
    """

    def __init__(
        self, n_beats: int = 120, k: float = 5.0, fallback: float | None = None, floor: float | None = None
    ) -> None:
        if int(n_beats) != n_beats or n_beats < 2:
            raise ValueError(f"n_beats must be an integer >= 2, got {n_beats}")
        if not np.isfinite(k) or k <= 0:
            raise ValueError(f"k must be a finite number > 0, got {k}")
        self.n_beats = int(n_beats)
        self.k = float(k)
        self.fallback = fallback
        self.floor = floor
        self._scores: list[float] = []
        self._threshold: float | None = None

    @property
    def ready(self) -> bool:
        """Whether the calibration window is full and the patient threshold set."""
        return self._threshold is not None

    @property
    def threshold(self) -> float | None:
        """The patient threshold once ready, else ``fallback``."""
        return self._threshold if self._threshold is not None else self.fallback

    @property
    def n_seen(self) -> int:
        """Scores collected so far (at most ``n_beats``)."""
        return len(self._scores)

    def update(self, scores) -> float | None:
        """Feed beat scores in stream order; return the threshold once calibration completes.

        Scores beyond the window are ignored.

        Parameters
        ----------
        scores : array-like of shape (n,)
            Scores of the next beats (may be a single-element array).

        Returns
        -------
        float or None
            The patient threshold when ready, else ``None``.
        """
        if self.ready:
            return self._threshold
        scores = as_scores(np.atleast_1d(scores), min_size=0)
        self._scores.extend(scores[: self.n_beats - len(self._scores)].tolist())
        if len(self._scores) < self.n_beats:
            return None
        threshold = robust_threshold(self._scores, self.k)
        self._threshold = threshold if self.floor is None else max(threshold, self.floor)
        return self._threshold

    def reset(self) -> None:
        """Forget the collected scores and the threshold (a new patient)."""
        self._scores = []
        self._threshold = None
