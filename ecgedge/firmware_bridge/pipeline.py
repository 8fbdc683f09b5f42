"""One board's samples: its format, board indices, gaps, lead-off and clock, on the way to its beats.

A :class:`StreamPipeline` turns one board's sample blocks into beats: what
the board says is checked (:func:`check_hello`, the block's shape), board
indices, gaps and lead-off are sorted out in :meth:`StreamPipeline.push`; the
analysis's :class:`~ecgedge.analysis.streams.FilterStage` band-passes the pending
chunks of every stream together and hands each stream its filtered chunk; the
stream's :class:`~ecgedge.analysis.finder.BeatFinder` then finds and cuts its beats.

Times come from the board's sample clock: each stream keeps ``t0``, the
earliest that sample 0 could have been read (``arrival - index / fs``,
minimised over blocks, allowed to creep up by :data:`CLOCK_DRIFT` for a slow
board crystal). A beat's arrival is when the block holding the last sample it
needs (its window's, or the one at which its next R peak was known:
``Beat.decided_sample``) would have been read had nothing waited (in the kernel,
in a queue), so latency counts every wait of the bridge's, and the wait for the
next beat is the beat's decision delay, apart from it; its time is ``t0 + R / fs``. A board reset (index
back to 0) restarts the clock.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ecgedge.analysis.beats import Beat
from ecgedge.analysis.finder import POLARITIES, BeatFinder
from ecgedge.analysis.leads import LeadWatch
from ecgedge.analysis.signal_quality import SignalCheck, adc_rails, asystole_readable
from ecgedge.analysis.streams import FS_RANGE, MAX_FILL_S
from ecgedge.beatformat import BeatFormat
from ecgedge.firmware_bridge.protocol import PROTOCOL_VERSION, Hello, Status

#: ADC counts per mV the bridge accepts (0.1: +-327 V over int16; 1e6: a count per nanovolt).
GAIN_RANGE = (0.1, 1e6)
#: Seconds of samples without a usable HELLO before the stream is in error (boards repeat it every second).
HELLO_WAIT_S = 3.0
#: How fast a stream's clock offset may rise (s per s): a board crystal 500 ppm slow.
CLOCK_DRIFT = 5e-4
#: The other leads' latest R peaks kept to split a pause of the beat lead (minutes of them at any rate).
OTHER_PEAKS_KEPT = 1024
#: Seconds to add to :func:`time.perf_counter` for UNIX time.
WALL_OFFSET = time.time() - time.perf_counter()


class BoardError(ValueError):
    """What a board sent (or how it was configured) cannot be used; the message says why."""


def check_hello(hello: Hello, lead: str | None = None) -> None:
    """Refuse a HELLO the bridge cannot work with.

    Parameters
    ----------
    hello : Hello
    lead : str, optional
        The lead the stream must use; it must be among the board's.

    Raises
    ------
    BoardError
        Naming the field and the accepted range.
    """
    if hello.protocol != PROTOCOL_VERSION:
        raise BoardError(f"HELLO speaks protocol version {hello.protocol}; the bridge speaks {PROTOCOL_VERSION}")
    lo, hi = FS_RANGE
    if not (math.isfinite(hello.fs) and lo <= hello.fs <= hi):
        raise BoardError(f"HELLO sample rate {hello.fs} Hz is outside [{lo:g}, {hi:g}] Hz")
    lo, hi = GAIN_RANGE
    if not (math.isfinite(hello.gain) and lo <= hello.gain <= hi):
        raise BoardError(f"HELLO gain {hello.gain} ADC counts/mV is outside [{lo:g}, {hi:g}]")
    if not -(2**31) <= hello.baseline < 2**31:
        raise BoardError(f"HELLO baseline {hello.baseline} does not fit an int32 ADC count")
    if not 0 <= hello.adc_bits <= 32:
        raise BoardError(f"HELLO says {hello.adc_bits} ADC bits; expected 0 (unknown) to 32")
    if not 1 <= len(hello.leads) <= 255:
        raise BoardError(f"HELLO names {len(hello.leads)} leads; expected 1 to 255")
    if lead is not None and lead not in hello.leads:
        raise BoardError(f"lead {lead!r} is not among the board's leads {hello.leads}")


@dataclass
class Chunk:
    """Contiguous samples (mV) of one stream waiting to be filtered (a :class:`~ecgedge.analysis.streams.SignalChunk`).

    ``ends`` are the board indices one past each block it was made of, and
    ``t0`` the stream clock's offset when it was queued.
    """

    start: int
    x: np.ndarray
    restart: bool
    t0: float
    ends: list[int] = field(default_factory=list)


@dataclass
class StreamCounters:
    """What happened to a stream's samples.

    Attributes
    ----------
    samples : int
        Samples received.
    gap_samples : int
        Samples lost and filled by interpolation (short gaps).
    restarts : int
        Times beat detection started over (start, long gaps, lead-off, board reset).
    lead_off_samples : int
        Samples dropped while an electrode was off.
    rejected_samples : int
        Samples dropped because the board's format was unknown or unusable
        (before a valid HELLO, after a bad one, a block of the wrong shape,
        queued when the format changed).
    shed_samples : int
        Samples dropped by the hub's overload policy.
    shed_beats : int
        Beats cut but not scored by the hub's overload policy.
    peaks : int
        R peaks detected.
    """

    samples: int = 0
    gap_samples: int = 0
    restarts: int = 0
    lead_off_samples: int = 0
    rejected_samples: int = 0
    shed_samples: int = 0
    shed_beats: int = 0
    peaks: int = 0


class StreamPipeline:
    """One board's samples in, beats (not yet scored) out.

    Parameters
    ----------
    name : str
        Stream name, copied into every beat.
    beat_format : BeatFormat
        How the model's training beats were cut (from the bundle).
    polarity : {"positive", "negative", "auto"}, default="positive"
        Direction of the R waves in this stream's lead. Beats are negated
        when it differs from ``beat_format.r_polarity``. ``"auto"`` decides
        from the first ``auto_beats`` R peaks (the sign of the larger
        excursion at the R peak); beats whose window has left the buffer by
        then (a few seconds) are not emitted.
    lead : str or None, default=None
        Lead to use when the board sends several (default: the first).
    max_fill_s : float, default=MAX_FILL_S
        Gaps up to this long are filled by linear interpolation (beats over
        them are marked ``gap``); longer ones restart detection
        (:data:`~ecgedge.analysis.streams.MAX_FILL_S`).
    auto_beats : int, default=5
    confirm_leads : bool, default=True
        Watch the board's other leads for R peaks (:class:`~ecgedge.analysis.leads.LeadWatch`): an
        asystole is counted from the newest R peak in any lead, so one lead's electrode or amplifier
        cannot raise it alone (:attr:`seconds_seen_without_peak`).

    Attributes
    ----------
    signal_problem : str or None
        What is wrong with the last second of signal (:class:`SignalCheck`), or None.
    seconds_without_peak : float
        Seconds of board samples (lead-off included) since the last R peak or
        since the format was set.
    """

    def __init__(
        self,
        name: str,
        beat_format: BeatFormat,
        *,
        polarity: str = "positive",
        lead: str | None = None,
        max_fill_s: float = MAX_FILL_S,
        auto_beats: int = 5,
        confirm_leads: bool = True,
    ) -> None:
        if polarity not in POLARITIES:
            raise ValueError(f"polarity must be one of {sorted(POLARITIES)}, got {polarity!r}")
        self.name = name
        self.beat_format = beat_format
        self.polarity = POLARITIES[polarity]
        self.lead = lead
        self.max_fill_s = max_fill_s
        self.auto_beats = auto_beats
        self.confirm_leads = confirm_leads
        self.watches: dict[int, LeadWatch] = {}  # the other leads' columns -> their watches
        self.other_peaks: deque[int] = deque(maxlen=OTHER_PEAKS_KEPT)  # their latest R peaks, lead after lead
        self.counters = StreamCounters()
        self.hello: Hello | None = None
        self.slot: tuple[float, int] | None = None  # (fs, row) in the FilterStage's banks
        self.next_index: int | None = None
        self.lead_off = False
        self.check: SignalCheck | None = None
        self._lead_index = 0
        self._last_x = 0.0
        self._pending: list[Chunk] = []
        self._t0 = 0.0  # the stream clock: sample i was read at t0 + i / fs at the earliest
        self._t_last = 0.0
        self._ends: deque[int] = deque()  # block ends of the segment being processed
        self._seg_t0 = 0.0
        self._last_time = -math.inf
        self._since_peak = 0
        self._seen_since_peak = 0  # the same, counting only samples that were read (not shed)
        self._shed = False  # blocks were shed since the last one taken
        self._unformatted_since: float | None = None  # arrival of the first sample dropped for want of a HELLO
        self._gaps: deque[tuple[int, int]] = deque()  # interpolated [start, end) ranges
        self.finder: BeatFinder | None = None

    @property
    def fs(self) -> float | None:
        return self.hello.fs if self.hello else None

    def known_fs(self) -> float:
        """The sample rate, once the board's format is known (every queued chunk has one)."""
        if self.hello is None:
            raise RuntimeError(f"{self.name}: the board's format is not known yet")
        return self.hello.fs

    @property
    def signal_problem(self) -> str | None:
        return None if self.check is None or self.lead_off else self.check.problem

    @property
    def seconds_without_peak(self) -> float:
        return self._since_peak / self.hello.fs if self.hello else 0.0

    @property
    def seconds_seen_without_peak(self) -> float:
        """Seconds of signal read since the last R peak that could show an asystole.

        Samples shed by the overload policy are left out, and the count starts afresh while the
        electrodes are off or the signal check finds no reading of the heart
        (:func:`~ecgedge.analysis.signal_quality.asystole_readable`): an asystole is that many
        seconds of a readable signal without a beat. An R peak in another lead of the board
        (``confirm_leads``) counts as a beat here.
        """
        return self._seen_since_peak / self.hello.fs if self.hello else 0.0

    def configure(self, hello: Hello) -> None:
        """Take the board's format (its HELLO, or the command line's for ASCII).

        Raises
        ------
        BoardError
            When the HELLO is unusable (:func:`check_hello`). The stream then
            drops samples until a usable HELLO comes.
        """
        try:
            check_hello(hello, self.lead)
        except BoardError:
            self._forget_format()
            raise
        if self.hello is not None and (hello.fs, hello.leads) == (self.hello.fs, self.hello.leads):
            if (hello.gain, hello.baseline, hello.adc_bits) != (
                self.hello.gain,
                self.hello.baseline,
                self.hello.adc_bits,
            ):
                self.check = self._signal_check(hello)
            self.hello = hello
            return
        self._forget_format()
        self.hello = hello
        self._unformatted_since = None
        self._lead_index = hello.leads.index(self.lead) if self.lead else 0
        self.watches = {
            j: LeadWatch(hello.fs) for j in range(len(hello.leads)) if self.confirm_leads and j != self._lead_index
        }
        self.other_peaks.clear()
        self.finder = BeatFinder(
            self.name, hello.fs, self.beat_format, polarity=self.polarity, auto_beats=self.auto_beats
        )
        self.check = self._signal_check(hello)

    def _signal_check(self, hello: Hello) -> SignalCheck:
        return SignalCheck(round(hello.fs), hello.gain, adc_rails(hello.adc_bits, hello.baseline))

    def _forget_format(self) -> None:
        """Drop what was queued under the old format; the next samples start over."""
        self.counters.rejected_samples += sum(c.x.size for c in self._pending)
        self._pending = []
        self.hello = None
        self.next_index = None
        self._since_peak = self._seen_since_peak = 0

    def reset(self) -> None:
        """Start beat detection over at the next block (after an internal error)."""
        self._pending = []
        self.next_index = None
        if self.check is not None:
            self.check.reset()

    def status(self, status: Status) -> None:
        """Electrodes off: drop samples; back on: restart detection."""
        if status.lead_off and not self.lead_off:
            self.lead_off = True
        elif not status.lead_off and self.lead_off:
            self.lead_off = False
            self.next_index = None
            if self.check is not None:
                self.check.reset()

    def push(self, first: int, values: np.ndarray, arrival: float) -> bool:
        """Queue a block of ADC counts (n, leads) starting at board index ``first``.

        Returns
        -------
        bool
            Whether the samples were taken (False: no usable format yet, or
            electrodes off; an empty block is taken).

        Raises
        ------
        BoardError
            When the block does not match the board's HELLO (number of leads).
        """
        n = len(values)
        self.counters.samples += n
        hello, check = self.hello, self.check  # configure() sets the check with the first HELLO
        if hello is None or check is None:  # no usable HELLO yet: the scale is unknown
            return self._reject_unformatted(n, arrival)
        if values.ndim != 2 or values.shape[1] != len(hello.leads):
            self.counters.rejected_samples += n
            raise BoardError(
                f"SAMPLES block of shape {values.shape}; the HELLO announced {len(hello.leads)} lead(s) {hello.leads}"
            )
        self._since_peak += n
        self._seen_since_peak += n
        if n == 0:
            return True
        if self.lead_off:
            self.counters.lead_off_samples += n
            self._seen_since_peak = 0
            return False
        raw = values[:, self._lead_index]
        check.add(raw)
        if not asystole_readable(check.problem):
            self._seen_since_peak = 0
        for column, watch in self.watches.items():
            for r in watch.add(first, (values[:, column] - hello.baseline) / hello.gain):
                self._seen_since_peak = min(self._seen_since_peak, max(0, first + n - r))
                if self.other_peaks and r < self.other_peaks[-1] - 10 * hello.fs:
                    self.other_peaks.clear()  # the board restarted its count: older peaks are another time
                self.other_peaks.append(r)
        x = (raw.astype(np.float64) - hello.baseline) / hello.gain
        start, x, restart = self._align(first, x, hello.fs)
        if x.size == 0:
            return True
        end = start + x.size
        self._advance_clock(start, end, arrival, restart, hello.fs, check)
        self._enqueue(start, x, restart, end)
        return True

    def _reject_unformatted(self, n: int, arrival: float) -> bool:
        """Drop a block that came before a usable HELLO; refuse when that has gone on too long.

        Parameters
        ----------
        n : int
            Samples in the block.
        arrival : float
            When the block was read (seconds).

        Returns
        -------
        bool
            False: the samples were not taken.

        Raises
        ------
        BoardError
            When samples have come without a usable HELLO for over :data:`HELLO_WAIT_S`.
        """
        self.counters.rejected_samples += n
        if self._unformatted_since is None:
            self._unformatted_since = arrival
        elif arrival - self._unformatted_since > HELLO_WAIT_S:
            raise BoardError(
                f"samples but no usable HELLO for {arrival - self._unformatted_since:.0f} s "
                f"({self.counters.rejected_samples} samples dropped)"
            )
        return False

    def _align(self, first: int, x: np.ndarray, fs: float) -> tuple[int, np.ndarray, bool]:
        """Fit a block (mV, starting at board index ``first``) after what the stream already has.

        A short gap before it is filled by linear interpolation (and remembered),
        samples it repeats are dropped, and a long gap, a step back or a stream
        without a previous block restarts detection.

        Parameters
        ----------
        first : int
            Board index of the block's first sample.
        x : ndarray of shape (n,)
            The block's samples in mV.
        fs : float
            Sample rate (Hz).

        Returns
        -------
        start : int
            Stream index of the first sample returned.
        x : ndarray
            The samples to queue (possibly empty).
        restart : bool
            Whether detection starts over at ``start``.
        """
        next_index = self.next_index
        if next_index is None:
            return first, x, True
        delta = (first - next_index) % 2**32  # board indices are u32
        delta = delta - 2**32 if delta >= 2**31 else delta
        if 0 < delta <= self.max_fill_s * fs:
            last = self._pending[-1].x[-1] if self._pending else self._last_x
            fill = np.linspace(last, x[0], delta + 2)[1:-1]
            self._gaps.append((next_index, next_index + delta))
            self.counters.gap_samples += delta
            return next_index, np.concatenate((fill, x)), False
        if -len(x) < delta <= 0:  # in step (0), or overlapping (a repeated frame): keep the new part
            return next_index, x[-delta:], False
        return first, x, True

    def _advance_clock(
        self, start: int, end: int, arrival: float, restart: bool, fs: float, check: SignalCheck
    ) -> None:
        """Update the stream clock ``t0`` with a block of samples ``[start, end)`` read at ``arrival``.

        A restart sets the clock afresh (and restarts the signal check), unless
        only shed blocks lie between this block and the previous one; otherwise
        the clock takes the earliest offset seen, allowed to creep up by
        :data:`CLOCK_DRIFT`.

        Parameters
        ----------
        start, end : int
            Stream indices of the block's first sample and one past its last.
        arrival : float
            When the block was read (seconds).
        restart : bool
            Whether detection starts over at ``start``.
        fs : float
            Sample rate (Hz).
        check : SignalCheck
            The stream's signal check.
        """
        offset = arrival - (end - 1) / fs
        keep_clock, self._shed = self._shed and start >= (self.next_index or 0), False
        if restart and not keep_clock:
            self._t0 = offset
            check.reset()
        else:
            self._t0 = min(self._t0 + CLOCK_DRIFT * max(0.0, arrival - self._t_last), offset)
        self._t_last = arrival

    def _enqueue(self, start: int, x: np.ndarray, restart: bool, end: int) -> None:
        """Queue samples for filtering, extending the last chunk when they follow on from it.

        Parameters
        ----------
        start, end : int
            Stream indices of the first sample and one past the last.
        x : ndarray of shape (end - start,)
            Samples in mV.
        restart : bool
            Whether detection starts over at ``start`` (always a new chunk).
        """
        if restart:
            self.counters.restarts += 1
            self._pending.append(Chunk(start, x, True, self._t0, [end]))
        elif self._pending and self._pending[-1].start + self._pending[-1].x.size == start:
            chunk = self._pending[-1]
            chunk.x = np.concatenate((chunk.x, x))
            chunk.ends.append(end)
            chunk.t0 = self._t0
        else:
            self._pending.append(Chunk(start, x, False, self._t0, [end]))
        self.next_index = end
        self._last_x = x[-1]

    def shed(self, n: int) -> None:
        """Count a block dropped by the overload policy; the stream's clock keeps running over the gap."""
        self.counters.shed_samples += n
        self._since_peak += n
        self._shed = True

    def take(self) -> list[Chunk]:
        """The chunks queued since the last call (one, unless a restart split them)."""
        chunks, self._pending = self._pending, []
        return chunks

    def process(self, chunk: Chunk, y: np.ndarray, qrs: np.ndarray) -> list[Beat]:
        """Detect and cut beats in a filtered chunk (``y`` in the ECG band, ``qrs`` by the detector's QRS band-pass)."""
        fs, finder = self.known_fs(), self.finder
        if finder is None:  # configure() makes one with the first HELLO
            raise RuntimeError(f"{self.name}: the board's format is not known yet")
        if chunk.restart:
            finder.restart(chunk.start)
            self._ends = deque()  # a new segment: nothing of the old one's timing is reused
            self._gaps = deque(g for g in self._gaps if g[0] >= chunk.start)
        self._seg_t0 = chunk.t0
        self._ends.extend(chunk.ends)
        peaks, beats = finder.process(y, qrs, chunk.start)
        for r in peaks:
            self.counters.peaks += 1
            self._since_peak = min(self._since_peak, max(0, self.next_index - r)) if self.next_index is not None else 0
            self._seen_since_peak = min(self._seen_since_peak, self._since_peak)
        for beat in beats:
            beat.arrival = self._arrival_of(max(beat.last_sample, beat.decided_sample), fs)
            # never earlier than the stream's previous beat, whatever the clock estimate did
            beat.time = max(WALL_OFFSET + self._seg_t0 + beat.sample / fs, self._last_time)
            self._last_time = beat.time
            beat.gap = any(lo <= beat.last_sample and beat.window_start < hi for lo, hi in self._gaps)
        self._forget_before(finder.cutter.buffer_start)
        return beats

    def _arrival_of(self, sample: int, fs: float) -> float:
        """When the block holding ``sample`` would have been read had nothing waited."""
        i = bisect.bisect_right(self._ends, sample)
        end = self._ends[i] if i < len(self._ends) else sample + 1
        return self._seg_t0 + (end - 1) / fs

    def _forget_before(self, index: int) -> None:
        while len(self._ends) > 1 and self._ends[0] <= index:
            self._ends.popleft()
        while self._gaps and self._gaps[0][1] <= index:
            self._gaps.popleft()
