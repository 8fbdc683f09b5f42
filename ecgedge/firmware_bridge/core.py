"""The bridge's state machine: board messages in, commits of beats, events, strips and patients out.

A :class:`BridgeCore` has no thread, port or queue. :meth:`BridgeCore.handle` takes the messages
the boards sent (:mod:`~ecgedge.firmware_bridge.links`), filters the new samples of all streams
together, cuts the beats they complete, scores all of those in one call, judges each beat by its
stream's :class:`~ecgedge.analysis.judge.BeatJudge`, and hands each result to ``commit`` as a
:class:`~ecgedge.firmware_bridge.writer.Commit`, in the order a log should hold it: the
conditions first, then each micro-batch of beats with the events its judging raised, then the
alarm strips whose signal has arrived. The :class:`~ecgedge.firmware_bridge.hub.Hub` feeds it
from its queue; a test feeds it directly.

Containment: what the bridge cannot use (a HELLO out of range, a block of the wrong shape, a lead
the board lacks) is a :class:`~ecgedge.firmware_bridge.pipeline.BoardError`; any other failure in
a stream's processing is caught too, counted as ``internal_errors`` and logged with its
traceback. Either puts that stream in the ``board-error`` condition until it sends usable samples
again; every other stream carries on. A scorer that fails on a batch is retried stream by
stream, so only the failing stream loses its beats.

Overload policy: a block that waited more than ``max_lag_s`` (its ``arrival`` against the time
:meth:`BridgeCore.handle` is given) is shed unprocessed, counted per stream as ``shed_samples``,
and the stream is in the ``overload`` condition until its blocks wait less than half that again;
a beat cut more than ``beat_deadline_s`` after its last sample would have been read is not
scored but counted as ``shed_beats``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from ecgedge.analysis.beats import Beat
from ecgedge.analysis.fibrillation import WINDOW_S, VFDetector, fibrillating, organised
from ecgedge.analysis.judge import BeatJudge
from ecgedge.analysis.leads import longest_silence_s
from ecgedge.analysis.scored import ScoredBeat
from ecgedge.analysis.signal_quality import asystole_readable
from ecgedge.analysis.streams import FilterStage
from ecgedge.calibration import PatientMemory
from ecgedge.firmware_bridge.events import Condition, ConditionTracker, Event, Relearned, RhythmChange
from ecgedge.firmware_bridge.links import BoardHello, BoardSamples, BoardStatus, Message
from ecgedge.firmware_bridge.pipeline import BoardError, StreamPipeline
from ecgedge.firmware_bridge.settings import BoardSpec, BridgeSettings, check_unique
from ecgedge.firmware_bridge.strips import StripKeeper
from ecgedge.firmware_bridge.writer import Commit, CommitWriter, Kept

#: Events whose strip is kept (besides every flagged beat's).
STRIP_ALARMS = frozenset(
    {c.raised_name for c in Condition if c is not Condition.WORKER_DOWN} | {"rhythm-change", "relearned"}
)
#: Alarms after which the stream may send nothing: their strip is what came before them.
ENDING_ALARMS = frozenset({"link-down", "board-error", "no-data", "lead-off", "no-signal"})
_log = logging.getLogger(__name__)


class BridgeCore:
    """Turn board messages into committed beats, events, strips and patient memories.

    Parameters
    ----------
    scorer : object
        Anything with ``score_samples(beats (n, L)) -> (n,)`` (higher = more normal), an
        ``offset_`` and a ``beat_format``, such as :func:`ecgedge.runtime.load_scorer`'s scorers.
    settings : BridgeSettings
    writer : CommitWriter
        Writes (and reports) what a pass produced, several commits a pass; its ``keeps_strips``
        and ``keeps_patients`` say, at :meth:`start`, whether strips and memories are wanted.
    on_signal : callable, optional
        ``on_signal(stream, fs, start, y)`` with each filtered chunk of a stream (mV, from board
        index ``start``), for a display.

    Notes
    -----
    The order of use: :meth:`add_stream` for each board, :meth:`start`, then :meth:`handle` as
    messages come (and :meth:`condition` / :meth:`flush` for what is found outside them), then
    :meth:`finish`.

    Examples
    --------
    >>> from ecgedge.firmware_bridge.writer import CommitWriter
    >>> from ecgedge.firmware_bridge.settings import BoardSpec, BridgeSettings
    >>> from ecgedge.runtime import load_scorer  # doctest: +SKIP
    >>> core = BridgeCore(load_scorer("bundle"), BridgeSettings(), CommitWriter())  # doctest: +SKIP
    >>> core.add_stream(BoardSpec("loop://", "bed1"))  # doctest: +SKIP
    """

    def __init__(
        self,
        scorer,
        settings: BridgeSettings,
        writer: CommitWriter,
        on_signal: Callable[[str, float, int, np.ndarray], None] | None = None,
    ) -> None:
        self.scorer = scorer
        self.settings = settings
        self.writer = writer
        self.on_signal = on_signal
        self.keep_strips = False
        self.keep_patients = False
        self.conditions = ConditionTracker()
        self.internal_errors = 0
        self.resumed_beats: dict[str, int] = {}
        self.resumed_patients: list[str] = []
        self.specs: dict[str, BoardSpec] = {}
        self.pipelines: dict[str, StreamPipeline] = {}
        self.judges: dict[str, BeatJudge] = {}
        self._filters = FilterStage()
        self._strips = StripKeeper()
        self._vf: dict[str, VFDetector] = {}
        # R sample of each stream's last beat judged normal or of an organised rhythm (VF has neither)
        self._last_organised: dict[str, int] = {}
        self._events: list[Event] = []  # raised since the last commit

    def add_stream(self, spec: BoardSpec) -> StreamPipeline:
        """Add a board's stream.

        Raises
        ------
        ValueError
            Two boards with one name or one port.
        """
        check_unique(self.specs.values(), spec)
        pipeline = StreamPipeline(
            spec.name,
            self.scorer.beat_format,
            polarity=spec.polarity,
            lead=spec.lead,
            confirm_leads=self.settings.confirm_leads,
        )
        if spec.fmt == "ascii":
            pipeline.configure(spec.ascii_hello())
        judging = self.settings.judging
        self.judges[spec.name] = BeatJudge(
            judging.calibration_beats,
            judging.adapt_s,
            beat_format=self.scorer.beat_format,
            alarm_limits=spec.limits(self.settings),
        )
        self.specs[spec.name] = spec
        self.pipelines[spec.name] = pipeline
        return pipeline

    def fs_of(self, stream: str) -> float | None:
        """Sample rate of a stream (None before its board said it)."""
        return self.pipelines[stream].fs

    def start(self, kept: Kept | None = None) -> None:
        """Start serving: resume what ``kept`` holds of each patient; every link is down until it opens."""
        self.keep_strips = self.writer.keeps_strips
        self.keep_patients = self.writer.keeps_patients
        for name in self.specs:
            self.conditions.assume(name, Condition.LINK_DOWN, time.time(), "not opened yet")
        kept = kept or Kept()
        for name, judge in self.judges.items():
            if name in kept.learning_scores:
                judge.replay(kept.learning_scores[name])
                self.resumed_beats[name] = len(kept.learning_scores[name])
            elif name in kept.patient_states:
                judge.resume(PatientMemory.from_state(kept.patient_states[name]))
                self.resumed_patients.append(name)

    def condition(self, stream: str, condition: Condition, active: bool, detail: str = "") -> None:
        """Set a stream's condition; an event when it changes, committed with the next commit."""
        event = self.conditions.set(stream, condition, active, time.time(), detail)
        if event is not None:
            self._events.append(event)

    def handle(self, messages: Sequence[Message], now: float) -> None:
        """Process the messages the boards sent, as of ``now`` (:func:`time.perf_counter`), and commit."""
        touched: dict[str, StreamPipeline] = {}
        for message in messages:
            pipeline = self.pipelines[message.stream]
            try:
                if self._take(pipeline, message, now):
                    touched[pipeline.name] = pipeline
            except Exception as exc:  # noqa: BLE001 - one board's failure is its stream's, not the bridge's
                self._fail(pipeline, exc)
        beats: list[Beat] = []
        if touched:
            for pipeline in touched.values():
                self._signal_conditions(pipeline)
            beats, failures = self._filters.run(list(touched.values()), self._signal)
            for pipeline, error in failures:
                self._fail(pipeline, error)
            for pipeline in touched.values():
                self._beat_conditions(pipeline)
        self.flush()
        beats = self._meet_deadline(beats)
        for start in range(0, len(beats), self.settings.max_batch):
            self._score(beats[start : start + self.settings.max_batch])
        self._keep_strips()

    def flush(self) -> None:
        """Commit the events raised since the last commit (with their strips requested)."""
        commit = Commit()
        commit.add("events", self._take_events())
        self.writer.write(commit)

    def finish(self) -> None:
        """Commit what is left at the end: the events, and every strip, however little signal followed."""
        self.flush()
        self._keep_strips(ended=True)

    def _take(self, pipeline: StreamPipeline, message: Message, now: float) -> bool:
        """Apply one message to its stream; True when the stream has new samples or status."""
        if isinstance(message, BoardSamples):
            if self._shed(pipeline, message, now):
                return False
            if pipeline.push(message.first, message.values, message.arrival):
                self.condition(pipeline.name, Condition.BOARD_ERROR, False)
            return True
        if isinstance(message, BoardHello):
            pipeline.configure(message.hello)
            return False
        if isinstance(message, BoardStatus):
            pipeline.status(message.status)
            return True
        url = self.specs[pipeline.name].url
        self.condition(pipeline.name, Condition.LINK_DOWN, not message.connected, f"{url}: {message.why}")
        return False

    def _signal_conditions(self, pipeline: StreamPipeline) -> None:
        self.condition(pipeline.name, Condition.LEAD_OFF, pipeline.lead_off, "the board reports electrodes off")
        problem = pipeline.signal_problem
        self.condition(pipeline.name, Condition.NO_SIGNAL, problem is not None, problem or "")

    def _beat_conditions(self, pipeline: StreamPipeline) -> None:
        silent = pipeline.seconds_without_peak
        self.condition(
            pipeline.name,
            Condition.NO_BEATS,
            silent > self.settings.no_beats_s,
            f"no R peak for {silent:.0f} s of signal (asystole or artefact)",
        )
        readable = not pipeline.lead_off and asystole_readable(pipeline.signal_problem)
        seen = pipeline.seconds_seen_without_peak  # seconds shed under overload are not the heart's
        limit = self.specs[pipeline.name].limits(self.settings).asystole_s
        self.condition(pipeline.name, Condition.ASYSTOLE, readable and seen > limit, f"no beat for {seen:.1f} s")

    def _fail(self, pipeline: StreamPipeline, exc: Exception) -> None:
        """Put a stream in the board-error condition; an unexpected exception also counts and logs."""
        if isinstance(exc, BoardError):
            detail = str(exc)
        else:
            self.internal_errors += 1
            _log.error("stream %s: internal error, stream restarted", pipeline.name, exc_info=exc)
            pipeline.reset()
            detail = f"internal error ({type(exc).__name__}: {exc}); stream restarted"
        self.condition(pipeline.name, Condition.BOARD_ERROR, True, detail)

    def _shed(self, pipeline: StreamPipeline, message: BoardSamples, now: float) -> bool:
        """Apply the overload policy to a block; True when it is shed."""
        lag, most = now - message.arrival, self.settings.max_lag_s
        if lag > most:
            pipeline.shed(len(message.values))
            detail = f"shedding samples queued more than {most:g} s ({lag:.1f} s behind)"
            self.condition(pipeline.name, Condition.OVERLOAD, True, detail)
            return True
        if lag < most / 2:
            self.condition(pipeline.name, Condition.OVERLOAD, False)
        return False

    def _meet_deadline(self, beats: list[Beat]) -> list[Beat]:
        """Drop (and count) the beats already later than ``beat_deadline_s``."""
        now = time.perf_counter()
        kept = []
        for beat in beats:
            if now - beat.arrival > self.settings.beat_deadline_s and not beat.warmup:
                self.pipelines[beat.stream].counters.shed_beats += 1
            else:
                kept.append(beat)
        return kept

    def _signal(self, stream: str, fs: float, start: int, y: np.ndarray) -> None:
        """Each filtered chunk: read for VF / flutter, held for alarm strips and shown (``on_signal``)."""
        detector = self._vf.get(stream)
        if detector is None or detector.fs != fs:
            detector = self._vf[stream] = VFDetector(fs)
        detector.add(start, y)
        active = fibrillating(detector, self._last_organised.get(stream)) and not self.pipelines[stream].lead_off
        detail = ""
        if active:
            detail = (
                f"a fibrillatory or flutter waveform, no normal beat and no organised rhythm, for {WINDOW_S:g} s "
                f"to sample {detector.window_end} (leakage {detector.leakage:.2f})"
            )
        self.condition(stream, Condition.VF, active, detail)
        if self.keep_strips:
            self._strips.add(stream, fs, start, y)
        if self.on_signal is not None:
            self.on_signal(stream, fs, start, y)

    def _keep_strips(self, ended: bool = False) -> None:
        """Commit the alarm strips whose signal has arrived."""
        if self.keep_strips:
            commit = Commit()
            commit.add("strips", self._strips.ready(ended=ended))
            self.writer.write(commit)

    def _take_events(self) -> list[Event]:
        """The events raised since the last commit, each with its strip requested."""
        events, self._events = self._events, []
        for event in events if self.keep_strips else ():
            if event.name in STRIP_ALARMS:
                sample = getattr(event, "sample", None)
                after = event.name not in ENDING_ALARMS
                self._strips.request(event.stream, sample, event.time, event.name, event.detail, after=after)
        return events

    def _scores(self, beats: list[Beat]) -> tuple[list[Beat], np.ndarray]:
        """Score beats in one call; if that fails, stream by stream, so only a failing stream loses its beats."""
        try:
            return beats, np.asarray(self.scorer.score_samples(np.stack([b.model_input for b in beats])), dtype=float)
        except Exception:  # noqa: BLE001 - find the stream whose beats fail, below
            pass
        kept: list[Beat] = []
        scores = []
        for stream in dict.fromkeys(b.stream for b in beats):
            mine = [b for b in beats if b.stream == stream]
            try:
                scores.append(np.asarray(self.scorer.score_samples(np.stack([b.model_input for b in mine])), float))
                kept += mine
            except Exception as exc:  # noqa: BLE001 - contained to this stream
                self._fail(self.pipelines[stream], exc)
        self.flush()
        return kept, np.concatenate(scores) if scores else np.empty(0)

    def _score(self, beats: list[Beat]) -> None:
        """Score and judge one micro-batch; commit its beats with the events and memories they changed."""
        beats, scores = self._scores(beats)
        if not beats:
            return
        scored = []
        for beat, score in zip(beats, scores.tolist(), strict=True):
            judge = self.judges[beat.stream]
            scored.append(ScoredBeat(beat, score, judge.judge(score, self.scorer.offset_, beat)))
            if organised(scored[-1].verdict, score, self.scorer.offset_):
                self._last_organised[beat.stream] = beat.sample
            for change in self._confirmed(beat, judge.take_events(), judge.alarms.limits.pause_s):
                self._judge_event(beat, change)
        for s in scored if self.keep_strips else ():
            if s.anomaly:
                why = f"{s.verdict.reason} " if s.verdict.reason else ""
                detail = f"flagged beat ({why}{s.verdict.mode})"
                self._strips.request(s.beat.stream, s.beat.sample, s.beat.time, "beat", detail)
        commit = Commit()
        commit.add("beats", scored)
        commit.add("patients", self._patients({b.stream for b in beats}))
        commit.add("events", self._take_events())
        self.writer.write(commit)

    def _confirmed(self, beat: Beat, changes: list, pause_s: float) -> list:
        """The judge's events less a pause that the board's other leads show beating through.

        A pause (no beat in the beat lead for ``pause_s``) ending at ``beat`` is withheld, its end
        too, when another lead's R peaks split it into shorter silences
        (:func:`~ecgedge.analysis.leads.longest_silence_s`): an electrode artefact, not the heart.
        """
        pipeline = self.pipelines[beat.stream]
        started = [c.sample for c in changes if c.alarm == "pause" and c.kind == "alarm"]
        if not started or not pipeline.other_peaks or pipeline.fs is None:
            return changes
        peaks = np.fromiter(pipeline.other_peaks, np.int64)
        if longest_silence_s(started[0], beat.sample, peaks, pipeline.fs) > pause_s:
            return changes
        return [c for c in changes if c.alarm != "pause"]

    def _judge_event(self, beat: Beat, change) -> None:
        """An alarm, a rhythm change, a relearned complex or a noisy stretch the judge found, as an event."""
        if change.kind in ("alarm", "alarm-over"):
            condition = Condition.of_alarm(change.alarm)
            self.condition(beat.stream, condition, change.kind == "alarm", change.detail or "")
        elif change.kind == "rhythm-change":
            self._events.append(RhythmChange(beat.stream, beat.time, change.rhythm, change.sample))
        elif change.kind == "relearned":
            self._events.append(Relearned(beat.stream, beat.time, change.sample))
        else:
            detail = f"noisy signal from sample {change.sample}: beats there are not judged"
            self.condition(beat.stream, Condition.NOISY, change.kind == "noisy", detail)

    def _patients(self, streams: set[str]) -> list[tuple[str, dict]]:
        """The new or changed patient memories of ``streams``, when a sink keeps them."""
        if not self.keep_patients:
            return []
        states = [(stream, self.judges[stream].state_to_save()) for stream in sorted(streams)]
        return [(stream, state) for stream, state in states if state is not None]

    def summary(self) -> dict:
        """The core's own totals: internal errors, resumed and adapted patients, ventricular runs, filter rows."""
        judges = self.judges.values()
        return {
            "internal_errors": self.internal_errors,
            "resumed_learning_beats": self.resumed_beats,
            "adapted_streams": sorted(n for n, j in self.judges.items() if j.memory is not None and j.memory.ready),
            "resumed_patients": self.resumed_patients,
            "ventricular_runs": {k: sum(j.alarms.counts[k] for j in judges) for k in ("couplet", "run")},
            "filter_rows": self._filters.rows,
        }
