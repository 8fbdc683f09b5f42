"""A causal, chunk-by-chunk R-peak detector.

Written here because no library does streaming QRS detection: wfdb's
``xqrs_detect``/``gqrs_detect``, neurokit2, biosppy and scipy's ``find_peaks``
all need the whole record (or look ahead without bound). This one follows
Pan & Tompkins (1985): a 5-15 Hz band-pass (done by the caller, so that many
streams filter in one call; see :class:`~ecgedge.firmware_bridge.filters.FilterBank`),
a derivative, squaring and a 150 ms moving-window integral (MWI), adaptive signal / noise peak levels,
T-wave rejection by slope, and a search back for a missed beat when no
beat came for 1.66 average RR intervals. Its look-ahead is bounded: an MWI
peak is judged once it has been the largest for ``refractory_s`` after it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

#: The QRS band the detector expects its ``qrs`` input filtered to (Hz).
QRS_BAND = (5.0, 15.0)
_DERIVATIVE = np.array([1.0, 2.0, 0.0, -2.0, -1.0]) / 8  # Pan-Tompkins five-point derivative


@dataclass(frozen=True)
class _Peak:
    mwi: int  # index of the MWI peak
    height: float  # MWI value there
    slope: float  # largest squared derivative in the MWI window before it
    r: int  # the R wave it stands for: extremum of the ECG before the MWI peak


class StreamingRPeakDetector:
    """Find R peaks in an ECG that arrives in chunks.

    Parameters
    ----------
    fs : float
        Sample rate in Hz.
    polarity : {1, -1, 0}, default=0
        Sign of the R wave in this lead: the R peak is the largest (1) or
        smallest (-1) ECG value near the QRS; 0 takes the largest magnitude.
        May be changed while streaming (:attr:`polarity`).
    learning_s : float, default=2.0
        Seconds of signal used to set the first signal and noise levels.
    refractory_s : float, default=0.2
        No two beats closer than this.

    Examples
    --------
    >>> import numpy as np
    >>> fs = 360.0
    >>> t = np.arange(int(10 * fs)) / fs
    >>> ecg = np.exp(-((t % 0.8 - 0.4) ** 2) / (2 * 0.01 ** 2))  # a spike every 0.8 s
    >>> qrs = FilterBank(bandpass_sos(*QRS_BAND, fs))
    >>> slot = qrs.add(ecg[0])
    >>> det = StreamingRPeakDetector(fs, polarity=1)
    >>> peaks = []
    >>> for start in range(0, t.size, 36):
    ...     chunk = ecg[start:start + 36]
    ...     peaks += det.process(chunk, qrs.filter(np.array([slot]), chunk[None])[0], start)
    >>> np.round(np.diff(peaks) / fs, 2).tolist()[:3]
    [0.8, 0.8, 0.8]
    """

    def __init__(self, fs: float, *, polarity: int = 0, learning_s: float = 2.0, refractory_s: float = 0.2) -> None:
        if fs < 100:
            raise ValueError(f"R-peak detection needs fs >= 100 Hz, got {fs}")
        self.fs = float(fs)
        self.polarity = polarity
        self._derivative = _DERIVATIVE * fs
        self._n_mwi = round(0.150 * fs)
        self._half = round(refractory_s * fs)
        self._r_search = round(0.25 * fs)
        self._t_wave = round(0.36 * fs)
        self._learning = round(learning_s * fs)
        self._spki: float | None = None
        self._npki = 0.0
        self._rr: deque[int] = deque(maxlen=8)
        self._rr_mean = 0.0
        #: R peaks before this index were held until the levels were learnt (reported late).
        self.warmup_end = 0
        self._restart(0)

    def _restart(self, start: int) -> None:
        self._start = start  # absolute index of the first buffered sample
        self._y = np.empty(0)
        self._qrs_tail = np.zeros(_DERIVATIVE.size - 1)  # last QRS-band samples, for the derivative
        self._m = np.empty(0)
        self._d2 = np.empty(0)
        self._settled = start  # MWI peaks before this index have been judged
        self._end = start
        self._first = start
        self._held: list[_Peak] = []  # peaks seen while learning
        self._noise: list[_Peak] = []  # noise peaks since the last beat, for search-back
        self._last: _Peak | None = None

    def restart(self, start: int) -> None:
        """Start over at sample ``start`` after a long gap, keeping the learnt levels.

        Restart the caller's QRS-band filter too.
        """
        self._restart(start)

    @property
    def next_index(self) -> int:
        """Index the next chunk must start at."""
        return self._end

    def process(self, y: np.ndarray, qrs: np.ndarray, start: int) -> list[int]:
        """Feed the next chunk; return the R peaks confirmed by it.

        Parameters
        ----------
        y : ndarray of shape (n,)
            Band-limited ECG (e.g. 0.5-40 Hz), where R peaks are located.
        qrs : ndarray of shape (n,)
            The same samples band-passed to :data:`QRS_BAND`, causally.
        start : int
            Index of ``y[0]``; must equal :attr:`next_index`.

        Returns
        -------
        list of int
            Sample indices of R peaks, increasing across calls.
        """
        if start != self._end:
            raise ValueError(f"chunk starts at {start}, expected {self._end} (use restart() after a gap)")
        with_tail = np.concatenate((self._qrs_tail, qrs))
        self._qrs_tail = with_tail[-self._qrs_tail.size :]
        d2 = np.convolve(with_tail, self._derivative, mode="valid") ** 2
        history = self._d2[-(self._n_mwi - 1) :]
        history = np.concatenate((np.zeros(self._n_mwi - 1 - history.size), history, d2))
        total = np.concatenate(([0.0], np.cumsum(history)))
        mwi = (total[self._n_mwi :] - total[: -self._n_mwi]) / self._n_mwi
        self._y = np.concatenate((self._y, y))
        self._d2 = np.concatenate((self._d2, d2))
        self._m = np.concatenate((self._m, mwi))
        self._end += y.size
        beats = self._judge_new_peaks()
        self._trim()
        return beats

    def _judge_new_peaks(self) -> list[int]:
        limit = self._end - self._half  # an MWI peak must dominate this far ahead
        if limit <= self._settled:
            return []
        m, lo, hi = self._m, self._settled - self._start, limit - self._start
        # local maxima in the newly settled stretch, then only those that dominate +-half
        inner = m[lo:hi]
        rising = inner > m[lo - 1 : hi - 1] if lo > 0 else np.r_[False, inner[1:] > inner[:-1]]
        idx = lo + np.flatnonzero(rising & (inner >= m[lo + 1 : hi + 1]) & (inner > 0))
        idx = [int(i) for i in idx if m[i] >= m[max(0, i - self._half) : i + self._half + 1].max()]
        self._settled = limit
        peaks = [self._peak(i) for i in idx]
        if self._spki is None:
            self._held.extend(peaks)
            if limit - self._first < self._learning:
                return []
            learnt = m[max(0, self._first - self._start) :]
            self._spki, self._npki = float(learnt.max()), float(learnt.mean())
            self.warmup_end = self._end
            peaks, self._held = self._held, []
        beats = []
        for peak in peaks:
            beats.extend(self._search_back(peak.mwi))
            if self._is_beat(peak):
                beats.append(self._accept(peak, 0.125))
            else:
                self._npki += 0.125 * (peak.height - self._npki)
                self._noise.append(peak)
        beats.extend(self._search_back(limit))
        return beats

    def _peak(self, i: int) -> _Peak:
        """Describe the MWI peak at buffer position i."""
        lo = max(0, i - self._r_search)
        window = self._y[lo : i + 1]
        shaped = np.abs(window) if self.polarity == 0 else self.polarity * window
        slope = float(self._d2[max(0, i - self._n_mwi) : i + 1].max())
        return _Peak(self._start + i, float(self._m[i]), slope, self._start + lo + int(np.argmax(shaped)))

    @property
    def _threshold(self) -> float:
        return self._npki + 0.25 * (self._spki - self._npki)

    def _is_beat(self, peak: _Peak) -> bool:
        if peak.height <= self._threshold:
            return False
        last = self._last
        if last is None:
            return True
        if peak.r - last.r < self._half:
            return False
        # soon after a beat and much less steep: a T wave
        return not (peak.mwi - last.mwi < self._t_wave and peak.slope < 0.5 * last.slope)

    def _accept(self, peak: _Peak, weight: float) -> int:
        self._spki += weight * (peak.height - self._spki)
        if self._last is not None:
            self._rr.append(peak.r - self._last.r)
            self._rr_mean = float(np.mean(self._rr))
        self._last = peak
        self._noise = [p for p in self._noise if p.mwi > peak.mwi]
        return peak.r

    def _search_back(self, now: int) -> list[int]:
        """Accept the best noise peak when no beat came for 1.66 mean RR intervals."""
        beats = []
        while self._last is not None and self._rr and now - self._last.mwi > 1.66 * self._rr_mean:
            floor, last = 0.5 * self._threshold, self._last
            options = [p for p in self._noise if p.height > floor and p.mwi - last.mwi > self._t_wave]
            if not options:
                break
            beats.append(self._accept(max(options, key=lambda p: p.height), 0.25))
        return beats

    def _trim(self) -> None:
        keep_from = self._settled - max(self._half, self._r_search, self._n_mwi) - 1
        cut = keep_from - self._start
        if self._spki is not None and cut > 0:
            self._y, self._m, self._d2 = self._y[cut:], self._m[cut:], self._d2[cut:]
            self._start += cut
