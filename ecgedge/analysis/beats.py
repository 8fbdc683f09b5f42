"""Cutting beats out of a stream the way the model's training beats were cut.

A beat's window may reach into the next beat when that one comes early (an early ventricular beat
after a normal one): what lies after the next beat's onset is not this beat. And whether an early
beat was premature or the first of a new rate shows in the interval after it. So a beat is cut once
the next R peak is known, or once the R-peak detector has decided every R peak up to
:data:`NEXT_BEAT_WAIT_S` after it (:attr:`~ecgedge.analysis.rpeaks.StreamingRPeakDetector.decided_until`),
and it carries the interval to the next beat (``rr_after``) and how much of its window is its own
(``own_length``). Its noise level (:func:`ecgedge.analysis.noise.beat_noise`) is
measured over that part (and over its difference from the previous beat's), and the stretch where
its P wave lies is kept for the rhythm analyser (:func:`ecgedge.analysis.atrial.atrial_segment`).

Each beat also carries its ``segment``: the number of the continuous stretch of signal it was cut
from, new each time cutting (re)starts (the stream's start, a gap too long to fill, the electrodes
back on, a board reset), so that whoever follows the beats' timing
(:class:`~ecgedge.analysis.judge.BeatJudge`) knows when nothing before is continuous with them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ecgedge.analysis.atrial import ATRIAL_POINTS, atrial_segment
from ecgedge.analysis.noise import beat_noise
from ecgedge.beatformat import BeatFormat

#: A QRS complex starts about this long (s) before its R peak (half of a wide QRS): the previous beat ends there.
ONSET_BEFORE_R_S = 0.1
#: A beat waits this long (s) after its R peak for the next one (beyond: ``rr_after`` is infinite, a
#: pause). The next interval tells a premature beat (followed by the previous rate or a pause) from
#: a rate step (:meth:`ecgedge.analysis.judge.BeatJudge.judge`): 1.5 s covers every rate from 40 bpm
#: up, the slowest a monitor calls an extreme bradycardia, at 0.85 of the interval.
NEXT_BEAT_WAIT_S = 1.5
#: Numbers every segment cut in this process, whatever its stream: two segments never share one.
_SEGMENTS = itertools.count(1)


@dataclass
class Beat:
    """One beat cut from a stream, ready to score.

    Attributes
    ----------
    stream : str
        Name of the stream it came from.
    sample : int
        R-peak index in the board's samples.
    rr : float
        RR interval (s) the window was sized by: this R minus the previous one.
    window_start : int
        Board index of ``window[0]``.
    window : ndarray of shape (n,), float32
        The filtered ECG (mV) over the beat window, at the board's rate.
    model_input : ndarray of shape (beat_format.length,), float32
        The window resampled to the model's length, in the model's polarity.
    last_sample : int
        The last board sample the window needs: the beat exists once it arrived.
    arrival : float
        :func:`time.perf_counter` when that sample arrived.
    time : float
        Wall-clock (UNIX) time of the R peak.
    gap : bool
        Whether the window covers samples that were lost and interpolated.
    warmup : bool
        Whether the beat waited for the R-peak detector to learn its levels
        (the first seconds of a stream), so its latency says nothing of the
        steady state.
    own_length : int
        How many of ``model_input``'s samples (from the first) lie before the
        next beat's onset: all of them unless the next beat came early.
    noise : float
        The window's noise level (:func:`ecgedge.analysis.noise.beat_noise`).
    atrial : ndarray of shape (ATRIAL_POINTS,), float32
        The signal where its P wave lies (:func:`ecgedge.analysis.atrial.atrial_segment`);
        NaN when unknown.
    rr_after : float
        Seconds to the next R peak; inf when none came within :data:`NEXT_BEAT_WAIT_S`, NaN
        when unknown (a beat made elsewhere).
    decided_sample : int
        The last board sample held when the beat was cut (it waited for the next R peak): its
        verdict can be given once that sample arrived. ``(decided_sample - sample) / fs`` is the
        beat's decision delay.
    segment : int
        The continuous stretch of the stream it was cut from (:attr:`BeatCutter.segment`); 0 when
        unknown (a beat made elsewhere).
    """

    stream: str
    sample: int
    rr: float
    window_start: int
    window: np.ndarray
    model_input: np.ndarray
    last_sample: int
    arrival: float = 0.0
    time: float = 0.0
    gap: bool = False
    warmup: bool = False
    own_length: int = 0
    noise: float = 0.0
    atrial: np.ndarray = field(default_factory=lambda: np.full(ATRIAL_POINTS, np.nan, dtype=np.float32))
    rr_after: float = math.nan
    decided_sample: int = 0
    segment: int = 0


class BeatCutter:
    """Hold the recent filtered signal and cut a window around each R peak.

    The window runs from ``R - before_r * RR`` to ``R + after_r * RR`` with
    RR the interval from the previous R peak (so the beat is complete
    ``after_r * RR`` after its R peak, without waiting for the next one), or
    a fixed time around R when the format's ``window_unit`` is seconds, and
    is linearly resampled to ``beat_format.length`` points, endpoints included.

    Parameters
    ----------
    stream : str
    fs : float
        Sample rate in Hz.
    beat_format : BeatFormat
    flip : bool, default=False
        Negate the model input (the stream's R waves point the other way
        than the training beats').
    max_rr_s : float, default=2.0
        With a window in RR intervals, longer RR intervals (a pause, a missed
        beat) are not used to size a window; such a beat is skipped. A window
        fixed in time needs no RR interval: the beat after a pause of any
        length is cut.

    Attributes
    ----------
    segment : int
        The number of the stretch of signal being cut, copied into its beats: a new one, never used
        before in this process, at the start and at each :meth:`restart`.
    """

    def __init__(
        self, stream: str, fs: float, beat_format: BeatFormat, *, flip: bool = False, max_rr_s: float = 2.0
    ) -> None:
        self.stream = stream
        self.fs = float(fs)
        self.format = beat_format
        self.flip = flip
        self.max_rr = max_rr_s * fs
        self._keep = math.ceil(self.max_rr + sum(beat_format.window(self.max_rr, self.fs))) + 2
        self._y = np.empty(0)
        self._start = 0
        self._last_r: int | None = None
        self._onset = round(ONSET_BEFORE_R_S * fs)
        self._wait = round(NEXT_BEAT_WAIT_S * fs)
        self._pending: list[list] = []  # [R, last sample, start, end, RR, next R or None]
        self._previous: tuple[np.ndarray, int] | None = None  # the last beat's own window and its R index
        self.segment = next(_SEGMENTS)

    def restart(self, start: int) -> None:
        """Forget signal and peaks; the next chunk starts at ``start``, in a new :attr:`segment`."""
        self._y = np.empty(0)
        self._start = start
        self._last_r = None
        self._pending = []
        self._previous = None
        self.segment = next(_SEGMENTS)

    def add_signal(self, y: np.ndarray, start: int) -> None:
        """Append the next filtered chunk (mV) starting at board index ``start``."""
        if start != self._start + self._y.size:
            raise ValueError(f"chunk starts at {start}, expected {self._start + self._y.size}")
        self._trim()
        self._y = np.concatenate((self._y, y))

    @property
    def buffer_start(self) -> int:
        """Board index of the oldest sample held."""
        return self._start

    def value_at(self, index: int) -> float:
        """The filtered signal at a held board index."""
        return float(self._y[index - self._start])

    def add_peak(self, r: int) -> None:
        """Register an R peak; its beat is cut once its window has arrived."""
        if self._pending and self._pending[-1][5] is None:
            self._pending[-1][5] = r
        if (
            self._last_r is not None
            and r - self._last_r > 0
            and (self.format.window_unit == "s" or r - self._last_r <= self.max_rr)
        ):
            rr = r - self._last_r
            before, after = self.format.window(rr, self.fs)
            lo, hi = r - before, r + after
            self._pending.append([r, math.ceil(hi), lo, hi, rr, None])
        self._last_r = r

    def cut(self, decided_until: float = math.inf) -> list[Beat]:
        """Beats whose window has arrived and whose next beat is known, oldest first.

        Parameters
        ----------
        decided_until : float, default=inf
            The earliest R sample of a peak not yet added (the detector's
            :attr:`~ecgedge.analysis.rpeaks.StreamingRPeakDetector.decided_until`);
            a beat whose next R peak could still come within :data:`NEXT_BEAT_WAIT_S`, or
            whose window could still hold a later beat's onset, waits.
            The default: every peak is known (a whole recording).
        """
        end = self._start + self._y.size  # one past the last sample held
        beats = []
        while (
            self._pending
            and self._pending[0][1] < end
            and (
                self._pending[0][5] is not None
                or max(self._pending[0][0] + self._wait, self._pending[0][3] + self._onset) < decided_until
            )
        ):
            r, last, lo, hi, rr, next_r = self._pending.pop(0)
            first = math.floor(lo)
            if first < self._start:
                continue  # window reaches back past the buffer (a restart): skip it
            window = self._y[first - self._start : last - self._start + 1]
            positions = np.linspace(lo, hi, self.format.length)
            own_end = hi if next_r is None else min(hi, next_r - self._onset)
            resampled = np.interp(positions - first, np.arange(window.size), window)
            model_input = (-resampled if self.flip else resampled).astype(np.float32)
            own = window[: max(1, math.floor(own_end) - first + 1)].copy()
            noise = beat_noise(own, r - first, self.fs, previous=self._previous)
            self._previous = (own, r - first)
            beats.append(
                Beat(
                    self.stream,
                    r,
                    rr / self.fs,
                    first,
                    window.astype(np.float32),
                    model_input,
                    last,
                    own_length=max(1, int(np.sum(positions <= own_end))),
                    noise=noise,
                    atrial=atrial_segment(self._y, r - self._start, self.fs),
                    rr_after=math.inf if next_r is None else (next_r - r) / self.fs,
                    decided_sample=end - 1,
                    segment=self.segment,
                )
            )
        return beats

    def _trim(self) -> None:
        """Drop signal that no pending or future window can reach.

        It runs before a chunk is appended, never after: the peaks found in a
        long chunk (a backlog after a stall) all keep their windows.
        """
        keep_from = self._start + self._y.size - self._keep
        if self._pending:
            keep_from = min(keep_from, math.floor(self._pending[0][2]))
        if keep_from > self._start:
            self._y = self._y[keep_from - self._start :]
            self._start = keep_from


def cut_recording(signal: np.ndarray, peaks, fs: float, beat_format: BeatFormat, *, flip: bool = False) -> list[Beat]:
    """Cut a whole recorded signal at known R peaks, exactly as a live stream is cut.

    For offline work (a database's annotated beats, experiments on the
    window): the first peak only sizes the next window, as in a stream.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        The filtered signal (mV).
    peaks : iterable of int
        R-peak sample indices, increasing.
    fs : float
        Sample rate in Hz.
    beat_format : BeatFormat
    flip : bool, default=False
        Negate the model inputs (see :class:`BeatCutter`).

    Returns
    -------
    list of Beat
    """
    cutter = BeatCutter("recording", fs, beat_format, flip=flip)
    cutter.add_signal(np.asarray(signal, dtype=float), 0)
    for r in peaks:
        cutter.add_peak(int(r))
    return cutter.cut()
