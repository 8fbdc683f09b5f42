"""Many boards, one process: ports -> beats -> scores in micro-batches -> sinks.

Each board has a :class:`BoardLink`: a reconnecting
:class:`~ecgedge.firmware_bridge.source.SerialSource` whose reader (one
poller thread for all ports with a file descriptor) decodes frames (or
lines) and puts events on the hub's queue. The
:class:`Hub` loop, in one thread, takes whatever is queued, filters the new
samples of all streams together, cuts the beats they complete, scores all of
those in one call, applies each stream's threshold, writes and commits the
sinks, and only then reports the beats. Latency is measured per beat from
the arrival of the last sample its window needs to that commit; beats of a
stream's first seconds, which wait for the R-peak detector to learn its
levels, are counted apart (``warmup_beats``) and left out of it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Callable

import numpy as np

from ecgedge.firmware_bridge.beats import Beat
from ecgedge.firmware_bridge.decoder import AsciiDecoder, FrameDecoder, LinkStats
from ecgedge.firmware_bridge.judge import BeatJudge
from ecgedge.firmware_bridge.pipeline import FilterStage, StreamPipeline
from ecgedge.firmware_bridge.protocol import Hello, Status
from ecgedge.firmware_bridge.sinks import ScoredBeat
from ecgedge.firmware_bridge.source import SerialSource

FORMATS = ("binary", "ascii")


class BoardLink:
    """One board: port, decoder counters and stream pipeline.

    Decoder threads call :meth:`hello`, :meth:`samples` and :meth:`status`
    (the :class:`~ecgedge.firmware_bridge.decoder.Listener` interface); the
    link only forwards them to the hub's queue.
    """

    def __init__(self, events: queue.SimpleQueue, url: str, pipeline: StreamPipeline, fmt: str, baudrate: int) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
        self.url = url
        self.pipeline = pipeline
        self.fmt = fmt
        self.stats = LinkStats()
        self.source = SerialSource(url, self._protocol, baudrate=baudrate)
        self._events = events
        self._last: tuple[int, float] | None = None  # (next index, arrival) of the latest block

    @property
    def name(self) -> str:
        return self.pipeline.name

    def _protocol(self):
        if self.fmt == "binary":
            return FrameDecoder(self, self.stats)
        start = 0
        if self._last is not None:  # ASCII has no indices: count the time the link was down
            end, arrival = self._last
            start = end + round((time.perf_counter() - arrival) * self.pipeline.fs)
        return AsciiDecoder(self, self.stats, start=start)

    def hello(self, hello: Hello) -> None:
        self._events.put((self, "hello", hello, 0.0))

    def samples(self, first: int, values: np.ndarray, t: float) -> None:
        self._last = (first + len(values), t)
        self._events.put((self, "samples", (first, values), t))

    def status(self, status: Status) -> None:
        self._events.put((self, "status", status, 0.0))


class Hub:
    """Run the bridge for any number of boards.

    Parameters
    ----------
    scorer : object
        Anything with ``score_samples(beats (n, L)) -> (n,)`` (higher = more
        normal), an ``offset_`` and a ``beat_format``, such as
        :func:`ecgedge.runtime.load_scorer`'s scorers.
    sinks : sequence, default=()
        Objects with ``write(list[ScoredBeat])``, ``commit()``, ``close()``.
    calibration_beats : int or None, default=None
        When set, each stream's threshold is calibrated on its first this
        many beats (:class:`ecgedge.calibration.PatientCalibrator`), which
        are scored and logged but not flagged (``learning``), as a bedside
        monitor learns a patient's rhythm before it raises arrhythmia
        alarms; else every beat is judged by the scorer's threshold.
    on_beats : callable, optional
        ``on_beats(list[ScoredBeat])``, called after each micro-batch is committed.
    max_batch : int, default=512
        Largest number of beats scored in one call.
    """

    def __init__(
        self,
        scorer,
        *,
        sinks=(),
        calibration_beats: int | None = None,
        on_beats: Callable[[list[ScoredBeat]], None] | None = None,
        max_batch: int = 512,
    ) -> None:
        self.scorer = scorer
        self.beat_format = scorer.beat_format
        self.sinks = list(sinks)
        self.calibration_beats = calibration_beats
        self.on_beats = on_beats
        self.max_batch = max_batch
        self.links: list[BoardLink] = []
        self.latencies: deque[float] = deque(maxlen=1_000_000)
        self.beats = 0
        self.flagged = 0
        self.learning_beats = 0
        self.warmup_beats = 0
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._filters = FilterStage()
        self._judges: dict[str, BeatJudge] = {}
        self._pipelines: dict[str, StreamPipeline] = {}
        self._wall_offset = time.time() - time.perf_counter()

    def add_board(
        self,
        url: str,
        *,
        name: str | None = None,
        fmt: str = "binary",
        fs: float | None = None,
        gain: float = 200.0,
        baseline: int = 512,
        lead: str | None = None,
        polarity: str = "positive",
        baudrate: int = 115200,
    ) -> BoardLink:
        """Add a board at a pyserial URL.

        Parameters
        ----------
        url : str
        name : str, optional
            Stream name (default: the URL).
        fmt : {"binary", "ascii"}, default="binary"
        fs, gain, baseline : optional
            ASCII only (binary boards say so in their HELLO): sample rate
            (Hz, required), ADC counts per mV, ADC count of 0 mV.
        lead : str, optional
            Which lead of a multi-lead binary board.
        polarity : {"positive", "negative", "auto"}, default="positive"
            R-wave direction of the lead (see :class:`StreamPipeline`).
        baudrate : int, default=115200
        """
        name = name or url
        if name in self._pipelines:
            raise ValueError(f"two boards named {name!r}; give each a distinct name")
        pipeline = StreamPipeline(name, self.beat_format, polarity=polarity, lead=lead)
        if fmt == "ascii":
            if fs is None or fs <= 0:
                raise ValueError(f"ASCII board {url}: the sample rate (--fs) is required, got {fs}")
            pipeline.configure(Hello(fs, 0, gain, baseline, (lead or "ECG",)))
        elif fs is not None:
            raise ValueError(f"binary board {url}: the sample rate comes from its HELLO; drop fs={fs}")
        link = BoardLink(self._events, url, pipeline, fmt, baudrate)
        self._pipelines[name] = pipeline
        self._judges[name] = BeatJudge(self.calibration_beats)
        self.links.append(link)
        return link

    def run(self, duration: float | None = None, stop: threading.Event | None = None) -> dict:
        """Serve all boards until ``duration`` seconds pass or ``stop`` is set; return :meth:`summary`."""
        if not self.links:
            raise ValueError("no boards: add_board() first")
        stop = stop or threading.Event()
        deadline = None if duration is None else time.perf_counter() + duration
        for link in self.links:
            link.source.start()
        try:
            while not stop.is_set() and (deadline is None or time.perf_counter() < deadline):
                try:
                    events = [self._events.get(timeout=0.05)]
                except queue.Empty:
                    continue
                self._handle(events + self._drain())
        finally:
            for link in self.links:
                link.source.stop()
            self._handle(self._drain())
            for sink in self.sinks:
                sink.close()
        return self.summary()

    def wait_until_quiet(self, quiet: float = 0.5, timeout: float = 30.0) -> bool:
        """Block until no board has delivered a frame for ``quiet`` seconds.

        Use it after the boards stop sending and before stopping :meth:`run`,
        so frames still buffered in the ports are read, however loaded the
        machine. Returns False when ``timeout`` seconds pass first.
        """
        end = time.perf_counter() + timeout
        last, still_since = -1, time.perf_counter()
        while time.perf_counter() < end:
            frames = sum(link.stats.frames for link in self.links)
            if frames != last:
                last, still_since = frames, time.perf_counter()
            elif time.perf_counter() - still_since >= quiet:
                return True
            time.sleep(0.05)
        return False

    def _drain(self) -> list:
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def _handle(self, events: list) -> None:
        touched: dict[int, StreamPipeline] = {}
        for link, kind, payload, t in events:
            pipeline = link.pipeline
            if kind == "samples":
                pipeline.push(payload[0], payload[1], t)
                touched[id(pipeline)] = pipeline
            elif kind == "hello":
                pipeline.configure(payload)
            else:
                pipeline.status(payload)
        if touched:
            beats = self._filters.run(list(touched.values()))
            for start in range(0, len(beats), self.max_batch):
                self._score(beats[start : start + self.max_batch])

    def _score(self, beats: list[Beat]) -> None:
        scores = self.scorer.score_samples(np.stack([b.model_input for b in beats]))
        scored = []
        for beat, score in zip(beats, scores.tolist()):
            beat.time = self._wall_offset + beat.arrival - (beat.last_sample - beat.sample) / self.fs_of(beat.stream)
            threshold, anomaly = self._judges[beat.stream].judge(score, self.scorer.offset_)
            scored.append(ScoredBeat(beat, score, threshold, anomaly))
        for sink in self.sinks:
            sink.write(scored)
        for sink in self.sinks:
            sink.commit()
        committed = time.perf_counter()
        self.latencies.extend(committed - b.arrival for b in beats if not b.warmup)
        self.warmup_beats += sum(b.warmup for b in beats)
        self.beats += len(scored)
        self.flagged += sum(s.anomaly for s in scored)
        self.learning_beats += sum(s.learning for s in scored)
        if self.on_beats is not None:
            self.on_beats(scored)

    def fs_of(self, stream: str) -> float:
        """Sample rate of a stream (for sinks)."""
        return self._pipelines[stream].fs

    def summary(self) -> dict:
        """Totals so far: beats, flags, link faults, latency percentiles (ms)."""
        lat = np.array(self.latencies) * 1000
        links = {link.name: {**link.stats.as_dict(), **vars(link.pipeline.counters), "reconnect_s": [round(r, 3) for r in link.source.reconnects]} for link in self.links}
        return {
            "boards": len(self.links),
            "beats": self.beats,
            "flagged": self.flagged,
            "learning_beats": self.learning_beats,
            "warmup_beats": self.warmup_beats,
            "frames": sum(link.stats.frames for link in self.links),
            "frames_dropped": sum(link.stats.dropped for link in self.links),
            "frames_lost": sum(link.stats.lost for link in self.links),
            "latency_ms": {
                "p50": float(np.percentile(lat, 50)) if lat.size else None,
                "p99": float(np.percentile(lat, 99)) if lat.size else None,
                "max": float(lat.max()) if lat.size else None,
            },
            "links": links,
        }
