"""How noisy a beat is: the signal's wiggle outside the QRS against the QRS's own steepness.

Outside its QRS complex a clean beat is slow (P and T waves, an isoelectric line): the typical
sample-to-sample change there is a few hundredths of the QRS's steepest one. Muscle noise,
electrode motion and artefact bursts add fast changes everywhere, so their typical change outside
the QRS approaches the QRS's. :func:`beat_noise` is that ratio; the median (not the largest
change) keeps a wide ventricular QRS or a steep T wave, a few samples, from counting as noise.

A fast run of wide ventricular complexes has no slow stretch: their waves fill the window, and its
typical change nears the QRS's as noise's does. But the waves of a rhythm repeat from one beat to
the next and noise does not, so the level is the smaller of the window's and that of its
difference from the stream's previous beat aligned at R: a repeated complex cancels there, and
noise, independent in the two windows, stays (times about the square root of 2).
"""

from __future__ import annotations

import numpy as np

#: The QRS complex around R (s before, s after) whose steepness the rest is compared with.
QRS_AROUND_R_S = (0.06, 0.08)


def beat_noise(window: np.ndarray, r: int, fs: float, previous: tuple[np.ndarray, int] | None = None) -> float:
    """Median absolute change outside the QRS over the largest one inside it.

    Parameters
    ----------
    window : ndarray of shape (n_samples,)
        The beat's filtered ECG (mV), up to the next beat's onset.
    r : int
        Index of the R peak in ``window``.
    fs : float
        Sample rate in Hz.
    previous : (ndarray, int), optional
        The stream's previous beat's window and the index of its R peak: the level is then the
        smaller of the window's and its difference's from that one, aligned at R (over this beat's
        own QRS steepness both).

    Returns
    -------
    float
        0 for a flat line outside the QRS; about 0.01-0.05 for a clean beat; towards 1 and above
        in noise. NaN when the window holds no QRS or nothing outside it.

    Examples
    --------
    >>> t = np.arange(234) / 360
    >>> clean = np.exp(-(((t - 0.25) / 0.01) ** 2))
    >>> round(beat_noise(clean, 90, 360.0), 3)
    0.0
    >>> noisy = clean + 0.2 * np.random.RandomState(0).normal(size=t.size)
    >>> beat_noise(noisy, 90, 360.0) > 0.2
    True
    >>> wide = np.sin(2 * np.pi * 2.5 * t)  # a run of wide complexes at 150 bpm: waves everywhere
    >>> beat_noise(wide, 90, 360.0) > 0.2, beat_noise(wide, 90, 360.0, previous=(wide, 90))
    (True, 0.0)
    """
    window = np.asarray(window, dtype=np.float64)
    level = _outside_over_qrs(window, window, r, fs)
    if previous is not None and not np.isnan(level):
        before, after = min(r, previous[1]), min(window.size - r, previous[0].size - previous[1])
        here = window[r - before : r + after]
        repeated = here - np.asarray(previous[0], dtype=np.float64)[previous[1] - before : previous[1] + after]
        level = min(level, _outside_over_qrs(repeated, here, before, fs))  # a NaN difference leaves the level
    return level


def _outside_over_qrs(signal: np.ndarray, beat: np.ndarray, r: int, fs: float) -> float:
    """Median absolute change of ``signal`` outside the QRS over the largest change of ``beat`` inside it."""
    outside_change, change = np.abs(np.diff(signal)), np.abs(np.diff(beat))
    lo, hi = max(0, r - round(QRS_AROUND_R_S[0] * fs)), min(change.size, r + round(QRS_AROUND_R_S[1] * fs))
    outside = np.concatenate((outside_change[:lo], outside_change[hi:]))
    steepest = change[lo:hi].max() if hi > lo else 0.0
    if not outside.size or steepest <= 0:
        return float("nan")
    return float(np.median(outside) / steepest)


class NoiseTracker:
    """Turn beats' noise levels into noisy stretches of a stream.

    A stretch starts at a beat whose noise level is above ``threshold`` (or cannot be measured)
    and ends once ``settle`` beats in a row are clean; every beat from its start to its end is
    ``"noisy"`` (the first clean beats after noise are not yet trusted).

    ``threshold=0.2``: clean beats in the shared MIT-BIH records stay under 0.1 (99th percentile;
    ventricular ones under 0.16, in runs too), and the QRS benchmark's noise (baseline wander, mains
    and muscle noise) passes 0.2 at about 6 dB SNR, where the R-peak detector starts to report false
    beats (``docs/rhythm.md``).

    Parameters
    ----------
    threshold : float, default=0.2
    settle : int, default=3

    Attributes
    ----------
    noisy : bool
        Whether the stream is in a noisy stretch.
    since : int or None
        Sample of the stretch's first beat while noisy.

    Examples
    --------
    >>> tracker = NoiseTracker(settle=2)
    >>> [tracker.add(level) for level in (0.02, 0.5, 0.03, 0.02, 0.02)]
    ['ok', 'noisy', 'noisy', 'noisy', 'ok']
    """

    def __init__(self, threshold: float = 0.2, settle: int = 3) -> None:
        if not threshold > 0 or settle < 1:
            raise ValueError(f"need threshold > 0 and settle >= 1, got {threshold}, {settle}")
        self.threshold = threshold
        self.settle = settle
        self.noisy = False
        self.since: int | None = None
        self._clean = 0

    def add(self, level: float, sample: int = 0) -> str:
        """Take the next beat's noise level (and R sample); return its quality, ``"ok"`` or ``"noisy"``."""
        clean = bool(level <= self.threshold)  # NaN: not measurable, so not clean
        if not clean and not self.noisy:
            self.noisy, self.since = True, sample
        if self.noisy:
            self._clean = self._clean + 1 if clean else 0
            if self._clean > self.settle:
                self.noisy, self.since, self._clean = False, None, 0
        return "noisy" if self.noisy else "ok"
