"""Atrial activity before each QRS: organised (a P wave beat after beat) or not (fibrillation).

In sinus rhythm every QRS follows its P wave at a fixed delay, so the stretch of signal before
one R peak looks like the same stretch before the next. In atrial fibrillation there is no P wave:
the atria wander (fibrillatory waves at 4-9 Hz, unrelated to when the ventricles beat), and the
stretches before successive R peaks share nothing. Detectors that add atrial activity to RR
irregularity (e.g. Babaeizadeh et al. 2009; Ladavich & Ghoraani 2015) use this to keep an
irregular sinus rhythm (sinus arrhythmia, frequent atrial ectopy, false beats) from being read
as AF.

:func:`atrial_segment` cuts that stretch, ``ATRIAL_BEFORE_R_S`` before R, at a fixed number of
points whatever the sample rate; :class:`AtrialActivity` correlates each of the last ``window``
segments of normal beats with the mean of the others and calls the activity organised when the
median correlation is above ``threshold``.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

#: The stretch before R (s before, s before) where a P wave lies: 300 ms to 100 ms, before any QRS onset.
ATRIAL_BEFORE_R_S = (0.30, 0.10)
#: Points a segment is resampled to (10 ms apart).
ATRIAL_POINTS = 21
#: Upper limit of the normal rate-corrected QT interval (s; Bazett): the previous beat's T wave ends by
#: ``QTC_S * sqrt(RR)``.
QTC_S = 0.44
#: The longest normal P wave (s; over 120 ms is an enlarged atrium): a segment's readable part (after the
#: previous T wave) must span at least this for one beat's P wave to be compared (:meth:`AtrialActivity.leads`).
P_WAVE_S = 0.12
#: Seconds before R of each point of a segment.
_BEFORE_R = np.linspace(*ATRIAL_BEFORE_R_S, ATRIAL_POINTS)
#: A whole segment's span (s): what a premature beat, or one after an ectopic beat, needs readable.
_SEGMENT_S = ATRIAL_BEFORE_R_S[0] - ATRIAL_BEFORE_R_S[1]


def atrial_segment(y: np.ndarray, r: int, fs: float) -> np.ndarray:
    """The filtered signal ``ATRIAL_BEFORE_R_S`` before the R peak at index ``r``, at ``ATRIAL_POINTS`` points.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        The filtered ECG (mV).
    r : int
        Index of the R peak in ``y``.
    fs : float
        Sample rate in Hz.

    Returns
    -------
    ndarray of shape (ATRIAL_POINTS,), float32
        NaN when ``y`` does not reach back far enough.
    """
    positions = r - np.linspace(*ATRIAL_BEFORE_R_S, ATRIAL_POINTS) * fs
    if positions[0] < 0 or positions[-1] > len(y) - 1:
        return np.full(ATRIAL_POINTS, np.nan, dtype=np.float32)
    first = math.floor(positions[0])
    stretch = y[first : math.ceil(positions[-1]) + 1]  # only the samples the points fall between
    return np.interp(positions - first, np.arange(stretch.size), stretch).astype(np.float32)


class AtrialActivity:
    """Whether the last normal beats share their atrial activity (P waves), causally.

    Each segment is read from the end of the previous beat's T wave on, over the part every
    segment held shows (the whole segment at a rate under about 90 bpm, its last
    :data:`P_WAVE_S` or more up to about 110 bpm), and detrended (a straight line through it
    removed: baseline and the slope into the QRS are not atrial activity). Its correlation with
    the mean of the window's other segments is near 1 when every beat has the same P wave, and
    near 0 for fibrillatory waves.

    ``threshold=0.5``: the mean of the others explains at least a quarter of a segment's
    variance (r² = 0.25). Noise lowers the correlation of P waves, so the rule only ever keeps
    an irregular rhythm from being read as AF where the P waves are plain.

    Parameters
    ----------
    window : int, default=16
        Segments of normal beats kept (the rhythm analyser's window).
    threshold : float, default=0.5

    Examples
    --------
    >>> t = np.linspace(-1, 1, ATRIAL_POINTS)
    >>> rng = np.random.RandomState(0)
    >>> sinus = AtrialActivity()
    >>> for _ in range(16):
    ...     sinus.add(np.exp(-8 * t ** 2) + 0.05 * rng.normal(size=t.size), rr=0.9)
    >>> sinus.organised
    True
    >>> fibrillation = AtrialActivity()
    >>> for _ in range(16):
    ...     fibrillation.add(np.sin(2 * np.pi * (2.5 * t + rng.uniform())), rr=0.9)
    >>> fibrillation.organised
    False
    """

    def __init__(self, window: int = 16, threshold: float = 0.5) -> None:
        if window < 3:
            raise ValueError(f"window must be >= 3, got {window}")
        if not -1 < threshold < 1:
            raise ValueError(f"threshold must be in (-1, 1), got {threshold}")
        self.window = window
        self.threshold = threshold
        # (segment, index of its first point after the previous T wave, its detrended parts by start); None: unreadable
        self._segments: deque[tuple[np.ndarray, int, dict[int, np.ndarray]] | None] = deque(maxlen=window)
        self._correlation: float | None = None  # of the segments held; computed when first asked after a change
        self._changed = True

    def add(self, segment: np.ndarray, rr: float, after_normal: bool = True) -> None:
        """Take the next normal beat's segment (:func:`atrial_segment`) and RR interval (s).

        Its readable part is what lies after the previous beat's T wave (``QTC_S * sqrt(rr)`` after
        that beat's R). A segment whose readable part is shorter than :data:`P_WAVE_S` (the last T
        wave may reach where the P wave lies), or one holding NaN, is no evidence either way: it
        takes a place in the window, as unreadable. At a fast rate only the segment's end is read,
        where the P wave of a beat on time lies (:meth:`leads`). Not ``after_normal`` (the beat
        before was ectopic, and a ventricular beat repolarises later than the QTc of a conducted one
        says), only a segment readable whole counts, as for a premature beat in :meth:`leads`.
        """
        segment = np.asarray(segment, dtype=np.float64)
        start = _readable_from(rr, P_WAVE_S if after_normal else _SEGMENT_S)
        if start is None or segment.shape != _BEFORE_R.shape or not np.isfinite(segment).all():
            self._segments.append(None)
        else:
            self._segments.append((segment, start, {}))
        self._changed = True

    def leads(self, segment: np.ndarray | None, rr: float, on_time: bool = False) -> bool:
        """Whether a beat is led by the window's P wave: the atria's own impulse came before it.

        True when the window's P waves are plain (:attr:`organised`) and the readable part of this
        beat's segment correlates with the same part of their mean above ``threshold`` (both
        detrended), the rule that reads one beat's P wave as the same as the others'. Readable is
        what lies after the previous beat's T wave (``QTC_S * sqrt(rr)`` after its R). A premature
        beat needs its whole segment readable. A beat ``on_time`` (not premature for the patient's
        rhythm: the sinus impulse was due) needs only the segment's last :data:`P_WAVE_S`: at a fast
        rate the T wave reaches into the segment's start, but the sinus P wave of a beat on time
        lies near its end (a PR interval of 120-200 ms puts it 60-250 ms before R). A shorter
        readable part, or a missing segment, is no evidence of a P wave: False.
        """
        if segment is None:
            return False
        segment = np.asarray(segment, dtype=np.float64)
        needed = P_WAVE_S if on_time else _SEGMENT_S
        start = _readable_from(rr, needed)
        if start is None or segment.shape != _BEFORE_R.shape or not np.isfinite(segment).all():
            return False  # checked first: the P waves' correlation costs more
        held = [s for s in self._segments if s is not None]
        if not held or not self.organised:
            return False
        start = max(start, max(first for _, first, _ in held))  # the part the window's segments show too
        if _BEFORE_R[start] - _BEFORE_R[-1] < needed - 1e-9:
            return False
        here, mean = _detrend(segment[start:]), _detrend(np.mean([s for s, _, _ in held], axis=0)[start:])
        norm = np.linalg.norm(here) * np.linalg.norm(mean)
        return bool(norm > 0 and here @ mean / norm > self.threshold)

    def clear(self) -> None:
        """Forget the segments (the stream restarted)."""
        self._segments.clear()
        self._changed = True

    @property
    def correlation(self) -> float | None:
        """Median correlation of each readable segment with the mean of the others.

        None with under a quarter of a window.
        """
        if self._changed:
            self._correlation, self._changed = self._median_correlation(), False
        return self._correlation

    def _median_correlation(self) -> float | None:
        held = [s for s in self._segments if s is not None]
        if len(held) < max(3, self.window // 4):
            return None
        start = max(first for _, first, _ in held)  # the part every segment held shows
        segments = np.array([_detrended(entry, start) for entry in held])
        others = (segments.sum(axis=0) - segments) / (len(segments) - 1)
        norms = np.linalg.norm(segments, axis=1) * np.linalg.norm(others, axis=1)
        products = np.einsum("ij,ij->i", segments, others)
        r = np.divide(products, norms, out=np.zeros_like(products), where=norms > 0)
        return float(np.median(r))

    @property
    def organised(self) -> bool | None:
        """Whether the P waves are plain (correlation above ``threshold``); None while unknown."""
        level = self.correlation
        return None if level is None else level > self.threshold


def _detrended(entry: tuple[np.ndarray, int, dict[int, np.ndarray]], start: int) -> np.ndarray:
    """A held segment from ``start`` on, detrended (kept: the window's common start seldom moves)."""
    segment, _, parts = entry
    if start not in parts:
        parts[start] = _detrend(segment[start:])
    return parts[start]


def _readable_from(rr: float, needed: float = P_WAVE_S) -> int | None:
    """Index of a segment's first point after the previous beat's T wave; None with under ``needed`` s after it."""
    if not np.isfinite(rr):
        return None
    start = int(np.searchsorted(-_BEFORE_R, -(rr - QTC_S * np.sqrt(max(rr, 0.0)))))
    if start >= _BEFORE_R.size or _BEFORE_R[start] - _BEFORE_R[-1] < needed - 1e-9:
        return None
    return start


def _detrend(segment: np.ndarray) -> np.ndarray:
    """A segment less its mean and straight-line slope."""
    t = np.arange(segment.size) - (segment.size - 1) / 2
    centred = segment - segment.mean()
    return centred - t * (centred @ t) / (t @ t)
