"""Many boards, one process: ports -> beats -> scores in micro-batches -> sinks, and events.

Each board has a :class:`BoardLink`: a reconnecting
:class:`~ecgedge.firmware_bridge.source.SerialSource` whose reader (one
poller thread for all ports with a file descriptor) decodes frames (or
lines) and puts typed messages on the hub's bounded queue. The :class:`Hub`
loop, in one thread, takes what is queued, filters the new samples of all
streams together, cuts the beats they complete, scores all of those in one
call, applies each stream's threshold, writes and commits the sinks, and
only then reports the beats.

Containment: whatever one board sends, or however it is misconfigured,
only its stream suffers. What the bridge cannot use (a HELLO out of range, a
block of the wrong shape, a lead it lacks) is a
:class:`~ecgedge.firmware_bridge.pipeline.BoardError`; any other failure in
a stream's processing is caught too, counted as ``internal_errors`` and
logged with its traceback. Either puts that stream in the ``board-error``
condition until it sends usable samples again; every other stream carries
on.

Events (:mod:`~ecgedge.firmware_bridge.events`): link down / up, board error,
no data (connected, but no valid frame for ``no_data_s``), lead-off (the
board says so), no signal (flat line, ADC rails: see
:mod:`~ecgedge.analysis.signal_quality`), no beats (no R peak for
``no_beats_s`` of signal: asystole or artefact), overload, a noisy stretch
(beats there are not judged) and rhythm changes (:class:`~ecgedge.analysis.judge.BeatJudge`).
Each goes to every sink, to ``on_event`` and into the summary's counts.

Overload policy. The queue holds at most ``max_queue`` messages; a full
queue blocks the reader, so the backlog waits in the kernel (bounded by
each port's buffer: boards then overrun their ports, which shows as lost
frames), and memory stays bounded. A block that waited in the queue more
than ``max_lag_s`` is shed unprocessed (the oldest samples first, so the
streams furthest behind lose the most), counted per stream as
``shed_samples``, and the stream is in the ``overload`` condition until its
blocks wait less than half that again; a beat cut more than
``beat_deadline_s`` after its last sample would have been read is not
scored but counted as ``shed_beats``. Latency is measured per beat from
when the last sample its window needs would have been read had nothing
waited (the stream's sample clock, see :mod:`~ecgedge.firmware_bridge.pipeline`,
so time in the kernel counts) to the commit; beats of a stream's first
seconds, which wait for the R-peak detector to learn its levels, are
counted apart (``warmup_beats``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ecgedge._closing import Closing
from ecgedge.analysis.alarms import AlarmLimits
from ecgedge.analysis.beats import Beat
from ecgedge.analysis.fibrillation import WINDOW_S, VFDetector, fibrillating, organised
from ecgedge.analysis.judge import BeatJudge
from ecgedge.calibration import PatientMemory
from ecgedge.firmware_bridge.decoder import AsciiDecoder, FrameDecoder, LinkStats
from ecgedge.firmware_bridge.events import Condition, ConditionTracker, Event, Relearned, RhythmChange
from ecgedge.firmware_bridge.latency import LatencyHistogram
from ecgedge.firmware_bridge.pipeline import BoardError, FilterStage, StreamPipeline, check_hello
from ecgedge.firmware_bridge.protocol import Hello, Status
from ecgedge.firmware_bridge.sinks import ScoredBeat
from ecgedge.firmware_bridge.source import PortError, SerialSource
from ecgedge.firmware_bridge.strips import StripKeeper

FORMATS = ("binary", "ascii")
#: Events whose strip is kept (besides every flagged beat's).
STRIP_ALARMS = frozenset(
    {
        "link-down",
        "board-error",
        "no-data",
        "lead-off",
        "no-signal",
        "no-beats",
        "overload",
        "noisy",
        "rhythm-change",
        "relearned",
        "asystole",
        "vf",
        "vt",
        "brady",
        "tachy",
        "pause",
    }
)
#: Alarms after which the stream may send nothing: their strip is what came before them.
ENDING_ALARMS = frozenset({"link-down", "board-error", "no-data", "lead-off", "no-signal"})
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoardHello:
    """A board announced its format."""

    link: BoardLink
    hello: Hello


@dataclass(frozen=True)
class BoardSamples:
    """A block of samples (ADC counts, shape (n, leads)) read at ``arrival`` (:func:`time.perf_counter`)."""

    link: BoardLink
    first: int
    values: np.ndarray
    arrival: float


@dataclass(frozen=True)
class BoardStatus:
    """A board reported its electrodes / ADC state."""

    link: BoardLink
    status: Status


@dataclass(frozen=True)
class LinkState:
    """The port opened (``connected``) or was lost, at UNIX time ``at``, for the reason given."""

    link: BoardLink
    connected: bool
    why: str
    at: float


Message = BoardHello | BoardSamples | BoardStatus | LinkState


class BoardLink:
    """One board: port, decoder counters and stream pipeline.

    Decoder threads call :meth:`hello`, :meth:`samples` and :meth:`status`
    (the :class:`~ecgedge.firmware_bridge.decoder.Listener` interface) and
    the source reports the port's state; the link turns each into a typed
    message on the hub's queue, waiting while the queue is full.
    """

    def __init__(self, events: queue.Queue, url: str, pipeline: StreamPipeline, fmt: str, baudrate: int) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
        self.url = url
        self.pipeline = pipeline
        self.fmt = fmt
        self.stats = LinkStats()
        self.source = SerialSource(url, self._protocol, baudrate=baudrate, on_state=self._state)
        self.closing = False  # set when the hub stops: a full queue then drops instead of waiting
        self.progress_at = 0.0  # perf_counter of the last frame seen by the hub's watchdog
        self.progress_frames = 0
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
            start = end + round((time.perf_counter() - arrival) * (self.pipeline.fs or 0))
        return AsciiDecoder(self, self.stats, start=start)

    def _put(self, message: Message) -> None:
        """Queue a message, waiting while the queue is full (backpressure), unless the hub is stopping."""
        while not self.closing:
            try:
                self._events.put(message, timeout=0.1)
                return
            except queue.Full:
                continue

    def hello(self, hello: Hello) -> None:
        self._put(BoardHello(self, hello))

    def samples(self, first: int, values: np.ndarray, t: float) -> None:
        self._last = (first + len(values), t)
        self._put(BoardSamples(self, first, values, t))

    def status(self, status: Status) -> None:
        self._put(BoardStatus(self, status))

    def _state(self, connected: bool, why: str) -> None:
        self._put(LinkState(self, connected, why, time.time()))


class Hub(Closing):
    """Run the bridge for any number of boards.

    Parameters
    ----------
    scorer : object
        Anything with ``score_samples(beats (n, L)) -> (n,)`` (higher = more
        normal), an ``offset_`` and a ``beat_format``, such as
        :func:`ecgedge.runtime.load_scorer`'s scorers.
    sinks : sequence, default=()
        Objects with ``write(list[ScoredBeat])``, ``write_events(list[Event])``,
        ``commit()``, ``close()``.
    calibration_beats : int or None, default=None
        When set, each stream's threshold is calibrated on its first this
        many beats (:class:`ecgedge.calibration.PatientCalibrator`), which
        are scored and logged but not flagged (``learning``), as a bedside
        monitor learns a patient's rhythm before it raises arrhythmia
        alarms; else every beat is judged by the scorer's threshold. A sink
        with ``learning_scores`` (:class:`~ecgedge.firmware_bridge.sinks.SqliteSink`)
        resumes each stream's learning from the beats it stored, so a
        restarted bridge does not learn its patients again.
    adapt_s : float or None, default=None
        When set, each stream adapts to its patient over its first this many
        seconds of beats (:class:`~ecgedge.analysis.judge.BeatJudge`,
        :class:`ecgedge.calibration.PatientMemory`); those beats are logged as
        ``learning``, later ones judged by the patient's memory. A sink with
        ``patient_state`` (:class:`~ecgedge.firmware_bridge.sinks.SqliteSink`)
        keeps each memory, and a restarted bridge resumes it.
    on_beats : callable, optional
        ``on_beats(list[ScoredBeat])``, called after each micro-batch is committed.
    on_event : callable, optional
        ``on_event(Event)``, called for each event after it is committed.
    on_signal : callable, optional
        ``on_signal(stream, fs, start, y)``, called with each filtered chunk of a stream (mV,
        from board index ``start``), for a display (:class:`ecgedge.view.feed.LiveFeed`).
    max_batch : int, default=512
        Largest number of beats scored in one call.
    no_beats_s : float, default=10.0
        Seconds of signal without an R peak that raise ``no-beats``.
    no_data_s : float, default=5.0
        Seconds connected without a valid frame that raise ``no-data``.
    max_lag_s : float, default=5.0
        Blocks queued longer than this are shed (see the overload policy).
    beat_deadline_s : float, default=10.0
        Beats cut later than this after their last sample are not scored.
    max_queue : int, default=50000
        Messages the queue holds before the readers wait.
    open_timeout : float, default=2.0
        Seconds :meth:`run` tries to open each port before it gives up.
    alarm_limits : AlarmLimits, optional
        When the arrhythmia alarms (:mod:`ecgedge.analysis.alarms`) and ``asystole`` (that many
        seconds of usable signal without a beat) are raised, for every board that
        :meth:`add_board` gives no limits of its own; default: the PhysioNet/CinC Challenge 2015
        definitions.
    """

    def __init__(
        self,
        scorer,
        *,
        sinks=(),
        calibration_beats: int | None = None,
        adapt_s: float | None = None,
        on_beats: Callable[[list[ScoredBeat]], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        on_signal: Callable[[str, float, int, np.ndarray], None] | None = None,
        max_batch: int = 512,
        no_beats_s: float = 10.0,
        no_data_s: float = 5.0,
        max_lag_s: float = 5.0,
        beat_deadline_s: float = 10.0,
        max_queue: int = 50_000,
        open_timeout: float = 2.0,
        alarm_limits: AlarmLimits | None = None,
    ) -> None:
        for name, value in (
            ("no_beats_s", no_beats_s),
            ("no_data_s", no_data_s),
            ("max_lag_s", max_lag_s),
            ("beat_deadline_s", beat_deadline_s),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if max_queue < 1 or max_batch < 1:
            raise ValueError(f"max_queue and max_batch must be >= 1, got {max_queue}, {max_batch}")
        self.scorer = scorer
        self.beat_format = scorer.beat_format
        self.sinks = list(sinks)
        if calibration_beats and adapt_s:
            raise ValueError("streams are calibrated (calibration_beats) or adapted (adapt_s), not both")
        self.calibration_beats = calibration_beats
        self.adapt_s = adapt_s
        self.on_beats = on_beats
        self.on_event = on_event
        self.on_signal = on_signal
        self.max_batch = max_batch
        self.no_beats_s = no_beats_s
        self.no_data_s = no_data_s
        self.max_lag_s = max_lag_s
        self.beat_deadline_s = beat_deadline_s
        self.open_timeout = open_timeout
        self.alarm_limits = alarm_limits or AlarmLimits()
        self._limits: dict[str, AlarmLimits] = {}
        self._vf: dict[str, VFDetector] = {}
        self._last_normal: dict[str, int] = {}  # R sample of each stream's last beat judged normal
        self.links: list[BoardLink] = []
        self.latencies = LatencyHistogram()
        self.beats = 0
        self.flagged = 0
        self.learning_beats = 0
        self.warmup_beats = 0
        self.internal_errors = 0
        self.resumed_beats: dict[str, int] = {}
        self.resumed_patients: list[str] = []
        self.conditions = ConditionTracker()
        self._events: queue.Queue = queue.Queue(maxsize=max_queue)
        self._filters = FilterStage()
        self._strips = StripKeeper()
        self._judges: dict[str, BeatJudge] = {}
        self._pipelines: dict[str, StreamPipeline] = {}
        self._ports: dict[str, str] = {}
        self._outbox: list[Event] = []
        self._watched_at = 0.0

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
        alarm_limits: AlarmLimits | None = None,
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
        alarm_limits : AlarmLimits, optional
            This board's alarm limits (a child's rates are not an adult's); default: the hub's.

        Raises
        ------
        ValueError
            Two boards with one name or one port, or an ASCII format the
            bridge cannot use (:func:`~ecgedge.firmware_bridge.pipeline.check_hello`).
        """
        name = name or url
        if name in self._pipelines:
            raise ValueError(f"two boards named {name!r}; give each a distinct name")
        port = url if "://" in url else os.path.realpath(url)
        if port in self._ports:
            raise ValueError(
                f"port {url} is given twice (boards {self._ports[port]!r} and {name!r}); one port carries one board"
            )
        pipeline = StreamPipeline(name, self.beat_format, polarity=polarity, lead=lead)
        if fmt == "ascii":
            if fs is None or fs <= 0:
                raise ValueError(f"ASCII board {url}: the sample rate (--fs) is required, got {fs}")
            hello = Hello(fs, 0, gain, baseline, (lead or "ECG",))
            try:
                check_hello(hello)
            except BoardError as exc:
                raise ValueError(f"ASCII board {url}: {exc}") from None
            pipeline.configure(hello)
        elif fs is not None:
            raise ValueError(f"binary board {url}: the sample rate comes from its HELLO; drop fs={fs}")
        link = BoardLink(self._events, url, pipeline, fmt, baudrate)
        self._pipelines[name] = pipeline
        self._ports[port] = name
        self._limits[name] = alarm_limits or self.alarm_limits
        self._judges[name] = BeatJudge(
            self.calibration_beats, self.adapt_s, beat_format=self.scorer.beat_format, alarm_limits=self._limits[name]
        )
        self.links.append(link)
        return link

    def open_ports(self) -> None:
        """Open every port once (each for up to ``open_timeout`` s, together).

        Raises
        ------
        PortError
            Naming every port that did not open, and why. A monitor that
            cannot read a board it was given must not start as if it could.
        """
        errors: list[str] = []

        def try_open(link: BoardLink) -> None:
            try:
                link.source.open_first(self.open_timeout)
            except PortError as exc:
                errors.append(str(exc))

        openers = [threading.Thread(target=try_open, args=(link,)) for link in self.links]
        for t in openers:
            t.start()
        for t in openers:
            t.join()
        if errors:
            for link in self.links:
                link.source.stop()
            raise PortError("; ".join(sorted(errors)))

    def run(self, duration: float | None = None, stop: threading.Event | None = None) -> dict:
        """Serve all boards until ``duration`` seconds pass or ``stop`` is set; return :meth:`summary`.

        Raises
        ------
        PortError
            When a port cannot be opened at start (see :meth:`open_ports`).
        """
        if not self.links:
            raise ValueError("no boards: add_board() first")
        try:
            self.open_ports()
        except PortError:
            for sink in self.sinks:
                sink.close()
            raise
        self._resume()
        stop = stop or threading.Event()
        deadline = None if duration is None else time.perf_counter() + duration
        now = time.perf_counter()
        for link in self.links:
            link.progress_at = now
            self.conditions.assume(link.name, Condition.LINK_DOWN, time.time(), "not opened yet")
            link.source.start()
        try:
            while not stop.is_set() and (deadline is None or time.perf_counter() < deadline):
                try:
                    messages = [self._events.get(timeout=0.05)]
                except queue.Empty:
                    messages = []
                self._handle(messages + self._drain())
                self._watch()
        finally:
            for link in self.links:
                link.closing = True
            for link in self.links:
                link.source.stop()
            self._handle(self._drain())
            self._flush_events()
            self._keep_strips(ended=True)
            for sink in self.sinks:
                sink.close()
        return self.summary()

    def _resume(self) -> None:
        """Resume each stream's learnt patient from the first sink that keeps them (an SQLite database)."""
        keeps = "learning_scores" if self.calibration_beats else "patient_state" if self.adapt_s else None
        sink = next((sink for sink in self.sinks if keeps and hasattr(sink, keeps)), None)
        for name, judge in self._judges.items() if sink is not None else ():
            if self.calibration_beats:
                scores = sink.learning_scores(name, self.calibration_beats)
                judge.replay(scores)
                self.resumed_beats[name] = len(scores)
            elif (state := sink.patient_state(name)) is not None:
                judge.resume(PatientMemory.from_state(state))
                self.resumed_patients.append(name)

    def wait_until_quiet(self, quiet: float = 0.5, timeout: float = 30.0) -> bool:
        """Block until no board has delivered a frame for ``quiet`` seconds and the queue is empty.

        Use it after the boards stop sending and before stopping :meth:`run`,
        so frames still buffered in the ports are read, however loaded the
        machine. Returns False when ``timeout`` seconds pass first.
        """
        end = time.perf_counter() + timeout
        last, still_since = -1, time.perf_counter()
        while time.perf_counter() < end:
            frames = sum(link.stats.frames for link in self.links)
            if frames != last or not self._events.empty():
                last, still_since = frames, time.perf_counter()
            elif time.perf_counter() - still_since >= quiet:
                return True
            time.sleep(0.05)
        return False

    def _drain(self, most: int = 20_000) -> list[Message]:
        messages = []
        while len(messages) < most:
            try:
                messages.append(self._events.get_nowait())
            except queue.Empty:
                break
        return messages

    def _condition(self, pipeline: StreamPipeline, condition: Condition, active: bool, detail: str = "") -> None:
        event = self.conditions.set(pipeline.name, condition, active, time.time(), detail)
        if event is not None:
            self._outbox.append(event)

    def _fail(self, pipeline: StreamPipeline, exc: Exception) -> None:
        """Put a stream in the board-error condition; an unexpected exception also counts and logs."""
        if isinstance(exc, BoardError):
            detail = str(exc)
        else:
            self.internal_errors += 1
            _log.error("stream %s: internal error, stream restarted", pipeline.name, exc_info=exc)
            pipeline.reset()
            detail = f"internal error ({type(exc).__name__}: {exc}); stream restarted"
        self._condition(pipeline, Condition.BOARD_ERROR, True, detail)

    def _handle(self, messages: list[Message]) -> None:
        touched: dict[int, StreamPipeline] = {}
        now = time.perf_counter()
        for message in messages:
            pipeline = message.link.pipeline
            try:
                if isinstance(message, BoardSamples):
                    if self._shed(pipeline, message, now):
                        continue
                    if pipeline.push(message.first, message.values, message.arrival):
                        self._condition(pipeline, Condition.BOARD_ERROR, False)
                    touched[id(pipeline)] = pipeline
                elif isinstance(message, BoardHello):
                    pipeline.configure(message.hello)
                elif isinstance(message, BoardStatus):
                    pipeline.status(message.status)
                    touched[id(pipeline)] = pipeline
                else:
                    self._condition(
                        pipeline, Condition.LINK_DOWN, not message.connected, f"{message.link.url}: {message.why}"
                    )
            except Exception as exc:  # noqa: BLE001 - one board's failure is its stream's, not the bridge's
                self._fail(pipeline, exc)
        for pipeline in touched.values():
            self._condition(pipeline, Condition.LEAD_OFF, pipeline.lead_off, "the board reports electrodes off")
            self._condition(
                pipeline, Condition.NO_SIGNAL, pipeline.signal_problem is not None, pipeline.signal_problem or ""
            )
        beats: list[Beat] = []
        if touched:
            beats, failures = self._filters.run(list(touched.values()), self._signal)
            for pipeline, exc in failures:
                self._fail(pipeline, exc)
        for pipeline in touched.values():
            silent = pipeline.seconds_without_peak
            self._condition(
                pipeline,
                Condition.NO_BEATS,
                silent > self.no_beats_s,
                f"no R peak for {silent:.0f} s of signal (asystole or artefact)",
            )
            # a flat line with the electrodes on may be the heart: only lead-off or a railed ADC rule asystole out
            problem = pipeline.signal_problem
            readable = not pipeline.lead_off and (problem is None or problem.startswith("flat line"))
            seen = pipeline.seconds_seen_without_peak  # seconds shed under overload are not the heart's
            self._condition(
                pipeline,
                Condition.ASYSTOLE,
                readable and seen > self._limits[pipeline.name].asystole_s,
                f"no beat for {seen:.1f} s",
            )
        self._flush_events()
        beats = self._meet_deadline(beats)
        for start in range(0, len(beats), self.max_batch):
            self._score(beats[start : start + self.max_batch])
        self._keep_strips()

    def _shed(self, pipeline: StreamPipeline, message: BoardSamples, now: float) -> bool:
        """Apply the overload policy to a block; True when it is shed."""
        lag = now - message.arrival
        if lag > self.max_lag_s:
            pipeline.shed(len(message.values))
            self._condition(
                pipeline,
                Condition.OVERLOAD,
                True,
                f"shedding samples queued more than {self.max_lag_s:g} s ({lag:.1f} s behind)",
            )
            return True
        if lag < self.max_lag_s / 2:
            self._condition(pipeline, Condition.OVERLOAD, False)
        return False

    def _meet_deadline(self, beats: list[Beat]) -> list[Beat]:
        """Drop (and count) the beats already later than ``beat_deadline_s``."""
        now = time.perf_counter()
        kept = []
        for beat in beats:
            if now - beat.arrival > self.beat_deadline_s and not beat.warmup:
                self._pipelines[beat.stream].counters.shed_beats += 1
            else:
                kept.append(beat)
        return kept

    def _watch(self, every: float = 0.5) -> None:
        """Wall-clock watchdogs: a connected port that delivers no valid frame."""
        now = time.perf_counter()
        if now - self._watched_at < every:
            return
        self._watched_at = now
        for link in self.links:
            frames = link.stats.frames
            if frames != link.progress_frames or not link.source.connected:
                link.progress_frames, link.progress_at = frames, now
            quiet = now - link.progress_at
            stats = link.stats
            detail = f"no valid frame for {quiet:.0f} s while connected ({stats.garbage_bytes} garbage bytes, {stats.dropped} broken frames)"
            self._condition(link.pipeline, Condition.NO_DATA, quiet > self.no_data_s, detail)
        self._flush_events()

    def _signal(self, stream: str, fs: float, start: int, y: np.ndarray) -> None:
        """Each filtered chunk: read for VF / flutter, held for alarm strips (when a sink keeps them) and shown (``on_signal``)."""
        detector = self._vf.get(stream)
        if detector is None or detector.fs != fs:
            detector = self._vf[stream] = VFDetector(fs)
        pipeline = self._pipelines[stream]
        detector.add(start, y)
        active = fibrillating(detector, self._last_normal.get(stream)) and not pipeline.lead_off
        detail = (
            (
                f"a fibrillatory or flutter waveform, no normal beat, for {WINDOW_S:g} s to sample "
                f"{detector.window_end} (leakage {detector.leakage:.2f})"
            )
            if active
            else ""
        )
        self._condition(pipeline, Condition.VF, active, detail)
        if self._keepers():
            self._strips.add(stream, fs, start, y)
        if self.on_signal is not None:
            self.on_signal(stream, fs, start, y)

    def _keepers(self) -> list:
        return [sink for sink in self.sinks if hasattr(sink, "write_strips")]

    def _keep_strips(self, ended: bool = False) -> None:
        """Hand the alarm strips whose signal has arrived to the sinks that keep them."""
        keepers = self._keepers()
        strips = self._strips.ready(ended=ended) if keepers else []
        for sink in keepers if strips else ():
            sink.write_strips(strips)
            sink.commit()

    def _flush_events(self) -> None:
        if not self._outbox:
            return
        events, self._outbox = self._outbox, []
        if self._keepers():
            for event in events:
                if event.name in STRIP_ALARMS:
                    self._strips.request(
                        event.stream,
                        getattr(event, "sample", None),
                        event.time,
                        event.name,
                        event.detail,
                        after=event.name not in ENDING_ALARMS,
                    )
        for sink in self.sinks:
            sink.write_events(events)
        for sink in self.sinks:
            sink.commit()
        if self.on_event is not None:
            for event in events:
                self.on_event(event)

    def _scores(self, beats: list[Beat]) -> tuple[list[Beat], np.ndarray]:
        """Score beats in one call; if that fails, stream by stream, so only a failing stream loses its beats."""
        try:
            return beats, np.asarray(self.scorer.score_samples(np.stack([b.model_input for b in beats])), dtype=float)
        except Exception:  # noqa: BLE001 - find the stream whose beats fail, below
            pass
        kept, scores = [], []
        for stream in dict.fromkeys(b.stream for b in beats):
            mine = [b for b in beats if b.stream == stream]
            try:
                scores.append(
                    np.asarray(self.scorer.score_samples(np.stack([b.model_input for b in mine])), dtype=float)
                )
                kept += mine
            except Exception as exc:  # noqa: BLE001 - contained to this stream
                self._fail(self._pipelines[stream], exc)
        self._flush_events()
        return kept, np.concatenate(scores) if scores else np.empty(0)

    def _score(self, beats: list[Beat]) -> None:
        beats, scores = self._scores(beats)
        if not beats:
            return
        scored = []
        for beat, score in zip(beats, scores.tolist()):
            judge = self._judges[beat.stream]
            scored.append(ScoredBeat(beat, score, judge.judge(score, self.scorer.offset_, beat)))
            if organised(scored[-1].verdict, score, self.scorer.offset_):
                self._last_normal[beat.stream] = beat.sample
            for change in judge.take_events():
                self._stream_event(beat, change)
        for sink in self.sinks:
            sink.write(scored)
        if self._keepers():
            for s in scored:
                if s.anomaly:
                    why = f"{s.verdict.reason} " if s.verdict.reason else ""
                    self._strips.request(
                        s.beat.stream, s.beat.sample, s.beat.time, "beat", f"flagged beat ({why}{s.verdict.mode})"
                    )
        self._save_patients({b.stream for b in beats})
        for sink in self.sinks:
            sink.commit()
        self._flush_events()
        committed = time.perf_counter()
        self.latencies.add(committed - b.arrival for b in beats if not b.warmup)
        self.warmup_beats += sum(b.warmup for b in beats)
        self.beats += len(scored)
        self.flagged += sum(s.anomaly for s in scored)
        self.learning_beats += sum(s.learning for s in scored)
        if self.on_beats is not None:
            self.on_beats(scored)

    def _stream_event(self, beat: Beat, change) -> None:
        """A rhythm change, a relearned complex or a noisy stretch the judge found, as the bridge's typed event."""
        if change.kind in ("alarm", "alarm-over"):
            self._condition(
                self._pipelines[beat.stream],
                Condition.of_alarm(change.alarm),
                change.kind == "alarm",
                change.detail or "",
            )
        elif change.kind in ("rhythm-change", "relearned"):
            event = (
                RhythmChange(beat.stream, beat.time, change.rhythm, change.sample)
                if change.kind == "rhythm-change"
                else Relearned(beat.stream, beat.time, change.sample)
            )
            self.conditions.counts[event.name] = self.conditions.counts.get(event.name, 0) + 1
            self._outbox.append(event)
        else:
            self._condition(
                self._pipelines[beat.stream],
                Condition.NOISY,
                change.kind == "noisy",
                f"noisy signal from sample {change.sample}: beats there are not judged",
            )

    def _save_patients(self, streams: set[str]) -> None:
        """Hand new or changed patient memories to the sinks that keep them (committed with the beats)."""
        keepers = [sink for sink in self.sinks if hasattr(sink, "save_patient")]
        for stream in sorted(streams) if keepers else ():
            state = self._judges[stream].state_to_save()
            for sink in keepers if state is not None else ():
                sink.save_patient(stream, state)

    def fs_of(self, stream: str) -> float:
        """Sample rate of a stream (for sinks)."""
        return self._pipelines[stream].fs

    def close(self) -> None:
        """Stop every board's port and close the sinks, as the end of :meth:`run` does; safe to repeat."""
        for link in self.links:
            link.source.stop()
        self._keep_strips(ended=True)
        for sink in self.sinks:
            sink.close()

    def summary(self) -> dict:
        """Totals so far: beats, flags, link faults, events, shedding, latency percentiles (ms)."""
        links = {
            link.name: {
                **link.stats.as_dict(),
                **vars(link.pipeline.counters),
                "reconnect_s": [round(r, 3) for r in link.source.reconnects],
                "active": self.conditions.active(link.name),
            }
            for link in self.links
        }
        return {
            "boards": len(self.links),
            "beats": self.beats,
            "flagged": self.flagged,
            "learning_beats": self.learning_beats,
            "warmup_beats": self.warmup_beats,
            "frames": sum(link.stats.frames for link in self.links),
            "frames_dropped": sum(link.stats.dropped for link in self.links),
            "frames_lost": sum(link.stats.lost for link in self.links),
            "garbage_bytes": sum(link.stats.garbage_bytes for link in self.links),
            "shed_samples": sum(link.pipeline.counters.shed_samples for link in self.links),
            "shed_beats": sum(link.pipeline.counters.shed_beats for link in self.links),
            "internal_errors": self.internal_errors,
            "resumed_learning_beats": self.resumed_beats,
            "adapted_streams": sorted(n for n, j in self._judges.items() if j.memory is not None and j.memory.ready),
            "resumed_patients": self.resumed_patients,
            "events": dict(sorted(self.conditions.counts.items())),
            "ventricular_runs": {k: sum(j.alarms.counts[k] for j in self._judges.values()) for k in ("couplet", "run")},
            "filter_rows": self._filters.rows,
            "latency_ms": self.latencies.summary_ms(),
            "links": links,
        }
