"""A board's other leads, watched for R peaks: an asystole is the whole heart's, an artefact one lead's.

A heart that stops is silent in every lead at once. An electrode that lifts, or an AC-coupled
amplifier recovering from a step (a tug on the cable, a defibrillator's pulse: the output jumps,
then decays back with the high-pass filter's time constant and shows no ECG meanwhile), silences
one lead. MIT-BIH 116 at 22:34 and 208 at 23:03 are such steps: MLII shows no QRS for 4-7 s while
V1 goes on beating. Monitors that see more than one lead therefore call asystole only when no lead
shows a beat (multi-lead confirmation).

:class:`LeadWatch` finds the R peaks of one more lead with the beat lead's own filters and R-peak
detector, and nothing else (no beats are cut or judged). The bridge counts an asystole's seconds
from the newest R peak in any lead, so a watch can only delay or withhold an asystole that the beat
lead alone would call, never call one. A pause (an RR interval of the beat lead over the limit) is
the same silence, shorter: it stands only when no other lead's R peak splits it
(:func:`longest_silence_s`). :func:`lead_peaks` runs a watch over a recorded lead.
"""

from __future__ import annotations

import numpy as np

from ecgedge.analysis.filters import ECG_BAND, FilterBank, bandpass_sos
from ecgedge.analysis.rpeaks import StreamingRPeakDetector, qrs_band_sos


class LeadWatch:
    """The R peaks of one lead, block by block (board sample indices).

    Blocks are gathered and searched ``every_s`` at a time: a board's frames (tens of samples)
    would cost a detector call each. A peak is then reported up to ``every_s`` late, so the
    seconds counted since the newest peak in any lead stay under ``every_s`` + the RR interval +
    the detector's delay (a few tenths): 1 s keeps them under the 4 s of an asystole for every rate
    over 25 bpm.

    Parameters
    ----------
    fs : float
        Sample rate in Hz.
    every_s : float, default=1.0
        Seconds of samples gathered before they are searched.

    Examples
    --------
    >>> fs = 360.0
    >>> t = np.arange(int(12 * fs)) / fs
    >>> lead = np.exp(-((t % 0.8 - 0.4) ** 2) / (2 * 0.01**2))  # a spike every 0.8 s
    >>> watch = LeadWatch(fs)
    >>> peaks = [r for first in range(0, t.size, 36) for r in watch.add(first, lead[first : first + 36])]
    >>> np.round(np.diff(peaks) / fs, 2).tolist()[:3]
    [0.8, 0.8, 0.8]
    """

    def __init__(self, fs: float, every_s: float = 1.0) -> None:
        self.fs = float(fs)
        self._every = max(1, round(every_s * fs))
        self._ecg, self._qrs = FilterBank(bandpass_sos(*ECG_BAND, fs)), FilterBank(qrs_band_sos(fs))
        self._row: np.ndarray | None = None
        self._searched: int | None = None  # board index after the last sample searched
        self._pending: list[np.ndarray] = []
        self._pending_first = 0
        self._end: int | None = None  # board index after the last sample taken
        self.detector = StreamingRPeakDetector(fs)  # polarity 0: the larger of the two directions

    def add(self, first: int, x: np.ndarray) -> list[int]:
        """Take the lead's samples (mV) from board index ``first``; return the R peaks found so far.

        Samples already taken (a block repeated within the last second) are skipped; any other
        break in the indices (a gap, a board that restarted its count) restarts the filters and the
        detector, which keeps its levels.
        """
        x = np.asarray(x, dtype=np.float64)
        if self._end is not None and first < self._end < first + x.size:  # overlapping: its new part
            x, first = x[self._end - first :], self._end
        repeated = self._end is not None and 0 <= self._end - (first + x.size) < self.fs
        if x.size == 0 or repeated:
            return []
        peaks = self._search() if self._pending and first != self._end else []
        if not self._pending:
            self._pending_first = first
        self._pending.append(x)
        self._end = first + x.size
        if self._end - self._pending_first >= self._every:
            peaks += self._search()
        return peaks

    def _search(self) -> list[int]:
        """Filter the gathered samples and find their R peaks."""
        x, first = np.concatenate(self._pending), self._pending_first
        self._pending = []
        if self._row is None:
            self._row = np.array([self._ecg.add(x[0])])
            self._qrs.add(0.0)
            self.detector.restart(first)
        elif first != self._searched:
            self._ecg.reset(int(self._row[0]), x[0])
            self._qrs.reset(int(self._row[0]), 0.0)
            self.detector.restart(first)
        self._searched = first + x.size
        y = self._ecg.filter(self._row, x[None])
        return self.detector.process(y[0], self._qrs.filter(self._row, y)[0], first)


def lead_peaks(signal: np.ndarray, fs: float, block: int) -> np.ndarray:
    """The R peaks a :class:`LeadWatch` finds in a recorded lead (mV), fed ``block`` samples at a time."""
    watch = LeadWatch(fs)
    signal = np.asarray(signal, dtype=np.float64)
    found = [r for first in range(0, signal.size, block) for r in watch.add(first, signal[first : first + block])]
    return np.asarray(found, dtype=np.int64)


def longest_silence_s(start: int, end: int, peaks: np.ndarray, fs: float) -> float:
    """The longest stretch from ``start`` to ``end`` (samples) without an R peak of ``peaks``, in seconds.

    A pause of the beat lead from ``start`` to ``end`` is the heart's when this is still over the
    limit: another lead's R peaks inside it (an electrode artefact silencing one lead) split it.

    Examples
    --------
    >>> longest_silence_s(0, 1800, np.array([900]), 360.0), longest_silence_s(0, 1800, np.array([]), 360.0)
    (2.5, 5.0)
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    inner = np.sort(peaks[(peaks > start) & (peaks < end)])
    return float(np.diff(np.concatenate(([start], inner, [end]))).max()) / fs
