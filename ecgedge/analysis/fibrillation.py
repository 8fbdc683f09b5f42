"""Ventricular fibrillation and flutter from the waveform itself, where there are no beats to find.

In VF the ventricles have no QRS complexes: the beat finder sees nothing sensible, so the alarm
cannot come from beats. Fibrillation and flutter waves are nearly sinusoidal at 3-10 Hz (flutter
about 4-5 Hz, 240-300 a minute); a QRS complex is a short sharp deflection between flat stretches.
The VF filter of Kuo & Dillman (1978), one of the classic detectors compared on MIT-BIH and the VF
databases (Amann, Tratnig & Unterkofler 2005), measures exactly that: it estimates the signal's
mean half period ``N`` from the ratio of its mean absolute value to its mean absolute change, adds
the signal to itself ``N`` samples later, and calls the *leakage* what survives: a sinusoid of that
half period cancels (leakage near 0), a train of QRS complexes does not (near 1).

:class:`VFDetector` runs it on the filtered signal over the last :data:`WINDOW_S` seconds, every
:data:`STEP_S`, and reads VF / flutter when the leakage is under :data:`LEAKAGE` and the waves'
rate lies in VF's range (:data:`RATE_HZ`: a slow baseline swing is a near sinusoid too, and is not
VF). The alarm (``vf``, high priority) rises when a whole window reads VF, the PhysioNet/CinC
Challenge 2015 definition (a fibrillatory or flutter waveform for 4 s), and ends at the first window
that does not. A wide regular QRS (a paced rhythm, coarse AF waves between normal QRS complexes)
can read as a near sinusoid too, but a fibrillating heart conducts no beat and makes no organised
rhythm: the bridge raises the alarm only while no beat of the window was judged one of the
patient's normal ones or belongs to an organised rhythm (:func:`fibrillating`, :func:`organised`).
An organised rhythm is one of two things fibrillation never is (:class:`RegularRhythm`, and the
judge's VT alarm): complexes at a regular rate slower than fibrillation's slowest waves (a paced
rhythm, a slow ventricular rhythm: the VF filter's "waves" are then the parts of each wide
complex), or a ventricular tachycardia, distinct ventricular complexes, 5 or more at over 100 bpm,
which is reported as ``vt``, not as ``vf``.
"""

from __future__ import annotations

from collections import deque
from statistics import median

import numpy as np

#: Seconds of signal judged at once: the 4 s of the alarm's definition.
WINDOW_S = 4.0
#: Seconds between judgements.
STEP_S = 1.0
#: Kuo & Dillman's leakage limit: under it the window is fibrillatory.
LEAKAGE = 0.625
#: The frequencies (Hz) of fibrillation and flutter waves, 180-600 a minute.
RATE_HZ = (3.0, 10.0)
#: Ventricular flutter runs at 150-300 a minute: a regular rhythm whose cycle is shorter than this
#: (s) may be flutter, so its regularity is no evidence against the VF alarm (:class:`RegularRhythm`).
FLUTTER_LONGEST_CYCLE_S = 0.4


def vf_leakage(x: np.ndarray, fs: float) -> float:
    """The VF filter's leakage of a stretch of ECG (near 0: a sinusoid in VF's range; 1: not one).

    Parameters
    ----------
    x : ndarray of shape (n_samples,)
        Filtered ECG (mV).
    fs : float
        Sample rate (Hz).

    Examples
    --------
    >>> t = np.arange(1440) / 360
    >>> vf_leakage(np.sin(2 * np.pi * 5 * t), 360.0) < 0.05
    True
    >>> beats = np.exp(-(((t % 0.8) - 0.4) / 0.02) ** 2)  # a QRS every 0.8 s
    >>> vf_leakage(beats, 360.0) > 0.9
    True
    """
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    change = np.abs(np.diff(x)).sum()
    if change <= 0:
        return 1.0
    half = int(np.floor(np.pi * np.abs(x).sum() / change + 0.5))
    if not fs / (2 * RATE_HZ[1]) <= half <= fs / (2 * RATE_HZ[0]) or half >= x.size:
        return 1.0  # the waves' rate is not VF's
    a, b = x[half:], x[:-half]
    return float(np.abs(a + b).sum() / max((np.abs(a) + np.abs(b)).sum(), 1e-12))


class VFDetector:
    """Follow one stream's filtered signal and say when VF / flutter starts and ends.

    Parameters
    ----------
    fs : float
        Sample rate (Hz).

    Attributes
    ----------
    active : bool
        Whether the last window read VF / flutter.
    leakage : float or None
        The last window's leakage.
    window_end : int or None
        Board index (exclusive) where the last window judged ends.
    window : int
        Samples in a window.

    Examples
    --------
    >>> fs = 250.0
    >>> detector = VFDetector(fs)
    >>> t = np.arange(int(10 * fs)) / fs
    >>> changes = detector.add(0, np.sin(2 * np.pi * 4.5 * t))  # 10 s of flutter waves
    >>> changes[0][0], changes[0][1] / fs
    (True, 4.0)
    """

    def __init__(self, fs: float) -> None:
        self.fs = float(fs)
        self.active = False
        self.leakage: float | None = None
        self.window_end: int | None = None
        self.window = round(WINDOW_S * fs)
        self._step = round(STEP_S * fs)
        self._y = np.empty(0)
        self._end: int | None = None  # board index one past the last sample held
        self._next = 0  # board index (exclusive) at which the next window ends

    def add(self, start: int, y: np.ndarray) -> list[tuple[bool, int]]:
        """Take the next filtered chunk (mV) from board index ``start``; return ``(active, sample)`` for each change.

        A chunk that does not follow the last one (a gap, a restart) starts the window afresh.
        """
        y = np.asarray(y, dtype=np.float64)
        if start != self._end:
            self._y, self._next = np.empty(0), start + self.window
        self._y = np.concatenate((self._y, y))
        self._end = start + y.size
        first = self._end - self._y.size  # board index of the first sample held
        changes = []
        while self._next <= self._end:
            window = self._y[self._next - self.window - first : self._next - first]
            self.leakage, self.window_end = vf_leakage(window, self.fs), self._next
            if (self.leakage < LEAKAGE) != self.active:
                self.active = not self.active
                changes.append((self.active, self._next))
            self._next += self._step
        self._y = self._y[-self.window :]
        return changes


def fibrillating(detector: VFDetector, last_normal: int | None) -> bool:
    """Whether a stream is in VF / flutter: its last window reads so and holds no beat judged normal.

    Parameters
    ----------
    detector : VFDetector
    last_normal : int or None
        R sample of the stream's last beat judged one of the patient's normal (supraventricular)
        beats, if any.
    """
    if not detector.active or detector.window_end is None:
        return False
    return last_normal is None or last_normal < detector.window_end - detector.window


def organised(verdict, score: float, offset: float) -> bool:
    """Whether a judged beat is one a fibrillating heart never makes: a normal beat, or one of an organised rhythm.

    A clean beat not flagged; while the patient is learnt (nothing is flagged then), one the
    population model accepts (``score >= offset``); and a clean beat the judge found in an organised
    rhythm (``verdict.organised_rhythm``: :class:`RegularRhythm`, or a ventricular tachycardia).
    """
    if verdict.quality != "ok":
        return False
    if getattr(verdict, "organised_rhythm", False):
        return True
    return score >= offset if verdict.mode == "learning" else not verdict.anomaly


class RegularRhythm:
    """Whether a stream's complexes come at a regular rate slower than fibrillation's waves.

    Fibrillation has no rhythm: the waves' cycle changes from one to the next, and the R-peak
    detector, when it finds anything in them, finds it at irregular intervals. Complexes that come
    as regularly as a sinus rhythm (the last ``differences`` successive RR differences no more
    irregular than ``irregular``: the judge's limit of AF's irregularity, and the beat's own interval
    as close to their median, so the first beats of a faster rhythm do not count) at a cycle no
    shorter than ventricular flutter's longest (:data:`FLUTTER_LONGEST_CYCLE_S`, 400 ms: flutter is
    regular too) are an organised rhythm, whatever their shape: a paced rhythm, a ventricular rhythm,
    a wide QRS whose parts the VF filter reads as waves. A regular rhythm faster than that (ventricular
    flutter, a fast VT) is left to the waveform.

    Parameters
    ----------
    differences : int
        Successive differences read (the judge's ``IRREGULAR_BEATS``).
    irregular : float
        Largest median relative successive difference of a regular rhythm (the judge's ``IRREGULAR``).

    Examples
    --------
    >>> regular = RegularRhythm(differences=8, irregular=0.14)
    >>> [regular.add(0.85) for _ in range(9)][-2:]  # paced at 70 bpm: regular from the 9th interval
    [False, True]
    >>> [regular.add(0.3) for _ in range(9)][-1]  # as fast as flutter: not this rule's
    False
    """

    def __init__(self, differences: int, irregular: float) -> None:
        self.irregular = float(irregular)
        self._rr: deque[float] = deque(maxlen=int(differences) + 1)

    def add(self, rr: float, usable: bool = True) -> bool:
        """Take the next beat's RR interval (s); return whether the stream's rhythm is regular and slow.

        A beat in noise (``usable=False``) is left out and reads as no evidence; an unknown interval
        (a restart) starts afresh.
        """
        if not np.isfinite(rr) or rr <= 0:
            self._rr.clear()
            return False
        if not usable:
            return False
        self._rr.append(float(rr))
        if len(self._rr) < (self._rr.maxlen or 0):
            return False
        intervals = list(self._rr)  # a few floats: plain Python is ten times faster than numpy here
        cycle = median(intervals)
        if cycle < FLUTTER_LONGEST_CYCLE_S or abs(rr - cycle) > self.irregular * cycle:
            return False  # as fast as flutter's waves, or this beat is off the rhythm (the first of another)
        irregularity = median([abs(b - a) / (0.5 * (a + b)) for a, b in zip(intervals, intervals[1:], strict=False)])
        return irregularity <= self.irregular
