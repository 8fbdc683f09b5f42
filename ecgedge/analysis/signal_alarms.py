"""The hub's alarms from the signal itself, VF / flutter and asystole, on a recorded lead.

The hub raises these two from the signal rather than from beats: ``vf`` when the last 4 s of the
filtered lead read as fibrillation or flutter and hold no beat judged normal
(:func:`ecgedge.analysis.fibrillation.fibrillating`), ``asystole`` when the signal read since the
last R peak is longer than the limit while the signal can show one
(:func:`ecgedge.analysis.signal_quality.asystole_readable`). The functions here replay those
rules on a whole recording offline, in the hub's blocks of :data:`~ecgedge.analysis.offline.BLOCK_S`,
for the evaluation (:mod:`ecgedge.evaluation_alarms`). Each alarm is ``(start, end, raised)`` in
samples: where its episode starts, where it ends, and when the hub would have raised it.
"""

from __future__ import annotations

import numpy as np

from ecgedge.analysis.fibrillation import WINDOW_S, VFDetector
from ecgedge.analysis.filters import ECG_BAND, bandpass_sos
from ecgedge.analysis.offline import BLOCK_S
from ecgedge.analysis.signal_quality import SignalCheck, asystole_readable

Alarm = tuple[int, int, int]


def vf_alarms(signal: np.ndarray, fs: float, normal_samples: np.ndarray) -> list[Alarm]:
    """The ``vf`` alarms the hub raises on a lead: ``(start, end, raised)`` samples of each.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        The lead (mV), unfiltered: it is band-passed causally as the hub filters it.
    fs : float
    normal_samples : ndarray of int, sorted
        R samples of the beats judged one of the patient's normal ones
        (:func:`ecgedge.analysis.fibrillation.organised`).

    Returns
    -------
    list of (int, int, int)
        The alarm starts (and is raised) at the end of its first window read as VF and ends at
        the end of the first window that is not (or the recording's end).
    """
    ends, waves = vf_windows(signal, fs)
    return vf_episodes(ends, waves, round(WINDOW_S * fs), normal_samples, len(signal))


def vf_windows(signal: np.ndarray, fs: float, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Where each of the VF filter's windows on a lead ends, and whether it reads as fibrillation or flutter.

    The first half of the hub's rule (:class:`~ecgedge.analysis.fibrillation.VFDetector`), which
    needs the signal only; :func:`vf_episodes` adds the beats. Parts of a long recording, each
    read from a little before it (the filter settles within seconds), give the windows of one pass.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        The lead (mV), unfiltered.
    fs : float
    first : int, default=0
        The sample index of ``signal[0]`` in its recording.

    Returns
    -------
    ends : ndarray of int64
        Each window's end (exclusive), in the recording's samples.
    waves : ndarray of bool
        Whether it reads as fibrillation or flutter (leakage under the limit).
    """
    from scipy.signal import sosfilt

    y, detector = sosfilt(bandpass_sos(*ECG_BAND, fs), signal), VFDetector(fs)
    ends: list[int] = []
    waves: list[bool] = []
    step = max(1, round(BLOCK_S * fs))
    for start in range(0, y.size, step):
        detector.add(first + start, y[start : start + step])
        if detector.window_end is not None and (not ends or detector.window_end != ends[-1]):
            ends.append(detector.window_end)
            waves.append(detector.active)
    return np.array(ends, dtype=np.int64), np.array(waves, dtype=bool)


def vf_episodes(ends: np.ndarray, waves: np.ndarray, window: int, normal_samples: np.ndarray, stop: int) -> list[Alarm]:
    """The ``vf`` alarms from the VF filter's windows (:func:`vf_windows`) and the beats judged normal.

    A window raises (or keeps) the alarm when it reads as fibrillation or flutter and holds no beat
    judged normal (:func:`~ecgedge.analysis.fibrillation.fibrillating`); the alarm ends at the end of
    the first window that does not, or at ``stop`` (the recording's end).
    """
    normal_samples = np.asarray(normal_samples, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    before = np.searchsorted(normal_samples, ends)  # normal beats before each window's end
    in_window = before - np.searchsorted(normal_samples, ends - window)
    active = np.asarray(waves, dtype=bool) & (in_window == 0)
    found: list[Alarm] = []
    since: int | None = None
    for end, on in zip(ends.tolist(), active.tolist(), strict=True):
        if on and since is None:
            since = end
        elif not on and since is not None:
            found.append((since, end, since))
            since = None
    if since is not None:
        found.append((since, stop, since))
    return found


def asystole_alarms(
    counts: np.ndarray,
    fs: float,
    gain: float,
    rails: np.ndarray,
    peaks: np.ndarray,
    limit_s: float,
) -> list[Alarm]:
    """The ``asystole`` alarms the hub raises on a lead: ``(start, end, raised)`` samples of each.

    The signal is checked second by second as the hub checks it (:func:`asystole_blocks`); a
    silence (no R peak) raises the alarm at the end of the first block in which the signal can show
    an asystole and has done so for more than ``limit_s`` since the peak before (the stream's
    ``seconds_seen_without_peak``). It starts at that peak and ends at the peak after the silence
    (the end of a recording is no silence).

    Parameters
    ----------
    counts : ndarray of shape (n_samples,), int
        The lead in ADC counts, as a board sends it.
    fs, gain : float
        Sample rate (Hz) and ADC counts per mV.
    rails : ndarray of int
        Counts at which the ADC is saturated (:func:`ecgedge.analysis.signal_quality.adc_rails`).
    peaks : ndarray of int, sorted
        R samples of the beats the bridge found.
    limit_s : float
        Seconds without a beat that make an asystole (:attr:`~ecgedge.analysis.alarms.AlarmLimits.asystole_s`).
    """
    return asystole_episodes(*asystole_blocks(counts, fs, gain, rails), peaks, fs, limit_s)


def asystole_blocks(
    counts: np.ndarray, fs: float, gain: float, rails: np.ndarray, first: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Where each of the hub's blocks on a lead ends, and whether the signal there can show an asystole.

    The signal's half of the hub's rule: :class:`SignalCheck` on the raw counts, one block of
    :data:`~ecgedge.analysis.offline.BLOCK_S` at a time (:func:`asystole_readable`);
    :func:`asystole_episodes` adds the R peaks.

    Parameters
    ----------
    counts : ndarray of shape (n_samples,), int
    fs, gain : float
    rails : ndarray of int
    first : int, default=0
        The sample index of ``counts[0]`` in its recording.

    Returns
    -------
    ends : ndarray of int64
        Each block's end (exclusive), in the recording's samples.
    readable : ndarray of bool
    """
    counts = np.asarray(counts)
    check, step = SignalCheck(round(fs), gain, rails), max(1, round(BLOCK_S * fs))
    starts = np.arange(0, counts.size, step)
    ends = np.minimum(starts + step, counts.size)
    readable = np.empty(ends.size, dtype=bool)
    for i, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        check.add(counts[start:end])
        readable[i] = asystole_readable(check.problem)
    return (first + ends).astype(np.int64), readable


def asystole_episodes(
    ends: np.ndarray, readable: np.ndarray, peaks: np.ndarray, fs: float, limit_s: float
) -> list[Alarm]:
    """The ``asystole`` alarms from the blocks' readability (:func:`asystole_blocks`) and the R peaks.

    ``peaks`` are every R peak found (in any lead the board sends, sorted); see :func:`asystole_alarms`.
    """
    ends, readable = np.asarray(ends, dtype=np.int64), np.asarray(readable, dtype=bool)
    unreadable_until = np.maximum.accumulate(np.where(readable, 0, ends))  # end of the last unreadable block
    found = []
    peaks = np.asarray(peaks, dtype=np.int64)
    for a, b in zip(peaks[:-1].tolist(), peaks[1:].tolist(), strict=True):
        lo, hi = np.searchsorted(ends, a + limit_s * fs, side="right"), np.searchsorted(ends, b, side="right")
        seen = ends[lo:hi] - np.maximum(a, unreadable_until[lo:hi])
        hits = np.flatnonzero(readable[lo:hi] & (seen > limit_s * fs))
        if hits.size:
            found.append((a, b, int(ends[lo + hits[0]])))
    return found
