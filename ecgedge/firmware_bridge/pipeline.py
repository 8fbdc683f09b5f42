"""Per-stream beat extraction, with the filtering of all streams done together.

A :class:`StreamPipeline` turns one board's sample blocks into beats: board
indices, gaps and lead-off are sorted out in :meth:`StreamPipeline.push`; a
:class:`FilterStage` band-passes the pending chunks of every stream in as
few :func:`scipy.signal.sosfilt` calls as possible and hands each stream its
filtered chunk; the stream then finds R peaks
(:class:`~ecgedge.firmware_bridge.rpeaks.StreamingRPeakDetector`) and cuts
beats (:class:`~ecgedge.firmware_bridge.beats.BeatCutter`).
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass

import numpy as np

from ecgedge.beatformat import BeatFormat
from ecgedge.firmware_bridge.beats import Beat, BeatCutter
from ecgedge.firmware_bridge.filters import FilterBank, bandpass_sos
from ecgedge.firmware_bridge.protocol import Hello, Status
from ecgedge.firmware_bridge.rpeaks import QRS_BAND, StreamingRPeakDetector

#: The band (Hz) beats are cut from: baseline wander and mains hum out, QRS shape kept.
ECG_BAND = (0.5, 40.0)
POLARITIES = {"positive": 1, "negative": -1, "auto": 0}


@dataclass
class Chunk:
    """Contiguous samples (mV) of one stream waiting to be filtered."""

    start: int
    x: np.ndarray
    restart: bool


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
    peaks : int
        R peaks detected.
    """

    samples: int = 0
    gap_samples: int = 0
    restarts: int = 0
    lead_off_samples: int = 0
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
    max_fill_s : float, default=1.0
        Gaps up to this long are filled by linear interpolation (beats over
        them are marked ``gap``); longer ones restart detection.
    auto_beats : int, default=5
    """

    def __init__(
        self,
        name: str,
        beat_format: BeatFormat,
        *,
        polarity: str = "positive",
        lead: str | None = None,
        max_fill_s: float = 1.0,
        auto_beats: int = 5,
    ) -> None:
        if polarity not in POLARITIES:
            raise ValueError(f"polarity must be one of {sorted(POLARITIES)}, got {polarity!r}")
        self.name = name
        self.beat_format = beat_format
        self.polarity = POLARITIES[polarity]
        self.lead = lead
        self.max_fill_s = max_fill_s
        self.auto_beats = auto_beats
        self.counters = StreamCounters()
        self.hello: Hello | None = None
        self.slot: int | None = None  # position in the FilterStage's banks
        self.next_index: int | None = None
        self._lead_index = 0
        self._lead_off = False
        self._last_x = 0.0
        self._pending: list[Chunk] = []
        self._arrivals: deque[tuple[int, float]] = deque()
        self._gaps: deque[tuple[int, int]] = deque()  # interpolated [start, end) ranges
        self._votes: list[float] = []
        self.detector: StreamingRPeakDetector | None = None
        self.cutter: BeatCutter | None = None

    @property
    def fs(self) -> float | None:
        return self.hello.fs if self.hello else None

    def configure(self, hello: Hello) -> None:
        """Take the board's format (its HELLO, or the command line's for ASCII)."""
        if self.hello is not None and (hello.fs, hello.leads) == (self.hello.fs, self.hello.leads):
            self.hello = hello
            return
        if self.lead is not None and self.lead not in hello.leads:
            raise ValueError(f"stream {self.name}: lead {self.lead!r} not among the board's leads {hello.leads}")
        self.hello = hello
        self._lead_index = hello.leads.index(self.lead) if self.lead else 0
        self.detector = StreamingRPeakDetector(hello.fs, polarity=self.polarity)
        self.cutter = BeatCutter(self.name, hello.fs, self.beat_format, flip=self.polarity == -self.beat_format.r_polarity)
        self.next_index = None  # a new format (board swapped): start over
        self.slot = None

    def status(self, status: Status) -> None:
        """Electrodes off: drop samples; back on: restart detection."""
        if status.lead_off and not self._lead_off:
            self._lead_off = True
        elif not status.lead_off and self._lead_off:
            self._lead_off = False
            self.next_index = None

    def push(self, first: int, values: np.ndarray, arrival: float) -> None:
        """Queue a block of ADC counts (n, leads) starting at board index ``first``."""
        if self.hello is None:
            return  # no HELLO yet: the scale is unknown
        n = len(values)
        self.counters.samples += n
        if self._lead_off:
            self.counters.lead_off_samples += n
            return
        x = (values[:, self._lead_index] - self.hello.baseline) / self.hello.gain
        restart = self.next_index is None
        start = first
        if not restart:
            delta = (first - self.next_index) % 2**32  # board indices are u32
            delta = delta - 2**32 if delta >= 2**31 else delta
            if 0 < delta <= self.max_fill_s * self.fs:
                last = self._pending[-1].x[-1] if self._pending else self._last_x
                fill = np.linspace(last, x[0], delta + 2)[1:-1]
                self._gaps.append((self.next_index, self.next_index + delta))
                self.counters.gap_samples += delta
                x, start = np.concatenate((fill, x)), self.next_index
            elif -n < delta <= 0:  # overlap (a repeated frame): keep the new part
                x, start = x[-delta:], self.next_index
            elif delta == 0:
                start = self.next_index
            else:
                restart = True
        if x.size == 0:
            return
        if restart:
            self.counters.restarts += 1
            self._pending.append(Chunk(start, x, True))
        elif self._pending and self._pending[-1].start + self._pending[-1].x.size == start:
            self._pending[-1].x = np.concatenate((self._pending[-1].x, x))
        else:
            self._pending.append(Chunk(start, x, False))
        self.next_index = start + x.size
        self._last_x = x[-1]
        self._arrivals.append((self.next_index, arrival))

    def take(self) -> list[Chunk]:
        """The chunks queued since the last call (one, unless a restart split them)."""
        chunks, self._pending = self._pending, []
        return chunks

    def process(self, chunk: Chunk, y: np.ndarray, qrs: np.ndarray) -> list[Beat]:
        """Detect and cut beats in a filtered chunk (``y`` in ECG_BAND, ``qrs`` in QRS_BAND)."""
        if chunk.restart:
            self.detector.restart(chunk.start)
            self.cutter.restart(chunk.start)
            self._arrivals = deque(a for a in self._arrivals if a[0] > chunk.start)
        self.cutter.add_signal(y, chunk.start)
        for r in self.detector.process(y, qrs, chunk.start):
            self.counters.peaks += 1
            if self.detector.polarity == 0:
                self._vote(self.cutter.value_at(r))
            self.cutter.add_peak(r)
        if self.detector.polarity == 0:
            return []
        beats = self.cutter.cut()
        for beat in beats:
            beat.arrival = self._arrival_of(beat.last_sample)
            beat.warmup = beat.last_sample < self.detector.warmup_end
            beat.gap = any(lo <= beat.last_sample and beat.window_start < hi for lo, hi in self._gaps)
        self._forget_before(self.cutter.buffer_start)
        return beats

    def _vote(self, amplitude: float) -> None:
        self._votes.append(amplitude)
        if len(self._votes) >= self.auto_beats:
            sign = 1 if np.median(self._votes) > 0 else -1
            self.detector.polarity = sign
            self.cutter.flip = sign == -self.beat_format.r_polarity

    def _arrival_of(self, sample: int) -> float:
        ends = [end for end, _ in self._arrivals]
        i = bisect.bisect_right(ends, sample)
        return self._arrivals[min(i, len(ends) - 1)][1]

    def _forget_before(self, index: int) -> None:
        while len(self._arrivals) > 1 and self._arrivals[0][0] <= index:
            self._arrivals.popleft()
        while self._gaps and self._gaps[0][1] <= index:
            self._gaps.popleft()


class FilterStage:
    """Band-pass the queued chunks of many streams together.

    Streams with the same sample rate share a pair of :class:`FilterBank`
    (ECG band and QRS band); chunks of equal length go through one
    :func:`scipy.signal.sosfilt` call per band.
    """

    def __init__(self) -> None:
        self._banks: dict[float, tuple[FilterBank, FilterBank]] = {}

    def _bank(self, fs: float) -> tuple[FilterBank, FilterBank]:
        if fs not in self._banks:
            self._banks[fs] = (FilterBank(bandpass_sos(*ECG_BAND, fs)), FilterBank(bandpass_sos(*QRS_BAND, fs)))
        return self._banks[fs]

    def run(self, pipelines: list[StreamPipeline]) -> list[Beat]:
        """Filter every queued chunk and return the beats they complete, stream by stream."""
        queued = [(p, p.take()) for p in pipelines]
        beats: list[Beat] = []
        depth = 0
        while True:
            groups: dict[tuple[float, int], list[tuple[StreamPipeline, Chunk]]] = {}
            for p, chunks in queued:
                if depth < len(chunks):
                    chunk = chunks[depth]
                    groups.setdefault((p.fs, chunk.x.size), []).append((p, chunk))
            if not groups:
                return beats
            for (fs, _), members in groups.items():
                ecg, qrs = self._bank(fs)
                for p, chunk in members:
                    if p.slot is None:
                        p.slot = ecg.add(chunk.x[0])
                        qrs.add(0.0)
                    elif chunk.restart:
                        ecg.reset(p.slot, chunk.x[0])
                        qrs.reset(p.slot, 0.0)
                slots = np.array([p.slot for p, _ in members])
                y = ecg.filter(slots, np.stack([chunk.x for _, chunk in members]))
                q = qrs.filter(slots, y)
                for i, (p, chunk) in enumerate(members):
                    beats.extend(p.process(chunk, y[i], q[i]))
            depth += 1
