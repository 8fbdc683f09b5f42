"""What the bridge keeps, and how: the sinks' protocols, one commit, and the writer that commits it.

The :class:`~ecgedge.firmware_bridge.core.BridgeCore` turns board messages into a :class:`Commit`:
an ordered list of beats, events, patient memories and alarm strips. A :class:`CommitWriter`
writes each commit to every sink able to keep its kind, commits every sink once, and only then
reports it (``on_beats``, ``on_event``) and counts it (beats, flags, events, latency). The
:class:`~ecgedge.firmware_bridge.hub.Hub` and the parent of a
:class:`~ecgedge.firmware_bridge.workers.WorkerPool` share it, so a board's beats are written,
counted and reported one way whichever serves it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ecgedge._closing import Closing
from ecgedge.analysis.scored import ScoredBeat
from ecgedge.firmware_bridge.events import Event
from ecgedge.firmware_bridge.latency import LatencyHistogram
from ecgedge.firmware_bridge.settings import Judging
from ecgedge.firmware_bridge.strips import Strip

Kind = Literal["beats", "events", "patients", "strips"]


@runtime_checkable
class Sink(Protocol):
    """Where beats and events go (:class:`~ecgedge.firmware_bridge.sinks.JsonlSink`, ``SqliteSink``)."""

    def write(self, beats: list[ScoredBeat]) -> None: ...

    def write_events(self, events: list[Event]) -> None: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class StripStore(Protocol):
    """A sink that keeps alarm strips (the waveform around each alarm and flagged beat)."""

    def write_strips(self, strips: list[Strip]) -> None: ...


@runtime_checkable
class PatientStore(Protocol):
    """A sink that keeps each stream's learnt patient, for a restarted bridge to resume it."""

    def save_patient(self, stream: str, state: dict) -> None: ...

    def patient_state(self, stream: str) -> dict | None: ...

    def learning_scores(self, stream: str, limit: int) -> list[float]: ...


@dataclass
class Commit:
    """What one pass of the core produced, in order: ``(kind, items)`` pairs, kinds as :data:`Kind`."""

    parts: list[tuple[Kind, list[Any]]] = field(default_factory=list)

    def add(self, kind: Kind, items: list[Any]) -> None:
        """Append ``items`` of ``kind`` (nothing when empty)."""
        if items:
            self.parts.append((kind, items))

    def __bool__(self) -> bool:
        return bool(self.parts)

    def streams(self) -> set[str]:
        """The streams whose beats it holds."""
        return {s.beat.stream for kind, items in self.parts if kind == "beats" for s in items}


@dataclass(frozen=True)
class Kept:
    """What the sinks keep of each stream's learnt patient, to resume it.

    Attributes
    ----------
    learning_scores : dict
        ``{stream: scores}``: a calibrated stream's stored learning scores, oldest first.
    patient_states : dict
        ``{stream: state}``: an adapted stream's last saved
        :class:`~ecgedge.calibration.PatientMemory` state.
    """

    learning_scores: dict[str, list[float]] = field(default_factory=dict)
    patient_states: dict[str, dict] = field(default_factory=dict)


def kept_of(sinks: Iterable[object], streams: Iterable[str], judging: Judging) -> Kept:
    """What the first sink that keeps patients holds of ``streams``, for the way they are judged.

    A calibrated stream resumes its learning scores, an adapted one its memory; a stream judged by
    the bundle's threshold resumes nothing.
    """
    store = next((sink for sink in sinks if isinstance(sink, PatientStore)), None)
    if store is None or judging.mode == "fixed":
        return Kept()
    if judging.calibration_beats is not None:
        return Kept(learning_scores={s: store.learning_scores(s, judging.calibration_beats) for s in streams})
    states = {s: store.patient_state(s) for s in streams}
    return Kept(patient_states={s: state for s, state in states.items() if state is not None})


class CommitWriter(Closing):
    """Write commits to the sinks, commit them, then report and count what they held.

    Parameters
    ----------
    sinks : sequence of Sink, default=()
        Written in order; those that are also a :class:`StripStore` or :class:`PatientStore` get
        the strips and patient memories too.
    on_beats : callable, optional
        ``on_beats(list[ScoredBeat])``, for each batch of beats, after the commit.
    on_event : callable, optional
        ``on_event(Event)``, for each event, after the commit.
    """

    def __init__(
        self,
        sinks: Sequence[Sink] = (),
        on_beats: Callable[[list[ScoredBeat]], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.on_beats = on_beats
        self.on_event = on_event
        self.latencies = LatencyHistogram()
        self.beats = 0
        self.flagged = 0
        self.learning_beats = 0
        self.warmup_beats = 0
        self.event_counts: dict[str, int] = {}

    @property
    def keeps_strips(self) -> bool:
        """Whether a sink keeps alarm strips (else the core need not hold the signal for them)."""
        return any(isinstance(sink, StripStore) for sink in self.sinks)

    @property
    def keeps_patients(self) -> bool:
        """Whether a sink keeps patient memories."""
        return any(isinstance(sink, PatientStore) for sink in self.sinks)

    def write(self, commit: Commit) -> None:
        """Write every part to the sinks able to keep it, commit each sink once, then report and count."""
        if not commit:
            return
        for kind, items in commit.parts:
            for sink in self.sinks:
                if kind == "beats":
                    sink.write(items)
                elif kind == "events":
                    sink.write_events(items)
                elif kind == "strips" and isinstance(sink, StripStore):
                    sink.write_strips(items)
                elif kind == "patients" and isinstance(sink, PatientStore):
                    for stream, state in items:
                        sink.save_patient(stream, state)
        for sink in self.sinks:
            sink.commit()
        committed = time.perf_counter()
        for kind, items in commit.parts:
            if kind == "events":
                self._report_events(items)
            elif kind == "beats":
                self._report_beats(items, committed)

    def _report_events(self, events: list[Event]) -> None:
        for event in events:
            self.event_counts[event.name] = self.event_counts.get(event.name, 0) + 1
            if self.on_event is not None:
                self.on_event(event)

    def _report_beats(self, beats: list[ScoredBeat], committed: float) -> None:
        self.latencies.add(committed - s.beat.arrival for s in beats if not s.beat.warmup)
        self.beats += len(beats)
        self.flagged += sum(s.anomaly for s in beats)
        self.learning_beats += sum(s.learning for s in beats)
        self.warmup_beats += sum(s.beat.warmup for s in beats)
        if self.on_beats is not None:
            self.on_beats(beats)

    def counters(self) -> dict:
        """What was committed so far: beats, flags, learning and warm-up beats, events, latency (ms)."""
        return {
            "beats": self.beats,
            "flagged": self.flagged,
            "learning_beats": self.learning_beats,
            "warmup_beats": self.warmup_beats,
            "events": dict(sorted(self.event_counts.items())),
            "latency_ms": self.latencies.summary_ms(),
        }

    def close(self) -> None:
        """Close every sink; safe to repeat."""
        for sink in self.sinks:
            sink.close()


class WritesCommits(Closing):
    """Mixin of the bridge's front ends (:class:`~ecgedge.firmware_bridge.hub.Hub`, ``WorkerPool``).

    Their ``sinks``, ``on_beats`` and ``on_event`` are their :class:`CommitWriter`'s (``writer``),
    settable after construction as before :meth:`run`.
    """

    writer: CommitWriter

    @property
    def sinks(self) -> list[Sink]:
        """The sinks written (append to add one before ``run``)."""
        return self.writer.sinks

    @sinks.setter
    def sinks(self, sinks: Sequence[Sink]) -> None:
        self.writer.sinks = list(sinks)

    @property
    def on_beats(self) -> Callable[[list[ScoredBeat]], None] | None:
        """Called with each committed batch of beats."""
        return self.writer.on_beats

    @on_beats.setter
    def on_beats(self, callback: Callable[[list[ScoredBeat]], None] | None) -> None:
        self.writer.on_beats = callback

    @property
    def on_event(self) -> Callable[[Event], None] | None:
        """Called with each committed event."""
        return self.writer.on_event

    @on_event.setter
    def on_event(self, callback: Callable[[Event], None] | None) -> None:
        self.writer.on_event = callback
