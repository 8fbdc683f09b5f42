"""What the bridge says about a stream besides its beats: typed, timestamped events.

A bedside monitor must say when it is not monitoring. Each stream has a few
:class:`Condition` s that start and end (the link is down, the board sent
something the bridge cannot use, the electrodes are off, the signal is not
an ECG, no beat for a while, samples shed under overload, the worker process
serving it died, the signal is too noisy to judge beats). The hub emits a
:class:`Raised` when a condition starts and a :class:`Cleared` when it ends,
a :class:`RhythmChange` when the stream's rhythm changes
(:mod:`ecgedge.analysis.rhythm`) and a :class:`Relearned` when the patient memory learnt a new
QRS complex (:mod:`ecgedge.analysis.judge`); sinks store them all (``as_dict`` gives the JSON
object, with an ``"event"`` field naming it) and the command line prints them on stderr.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from ecgedge.analysis.alarms import PRIORITY


class Condition(Enum):
    """A stream state that stops or degrades monitoring; value: (raised name, cleared name)."""

    LINK_DOWN = ("link-down", "link-up")
    BOARD_ERROR = ("board-error", "board-ok")
    NO_DATA = ("no-data", "data-back")
    LEAD_OFF = ("lead-off", "lead-on")
    NO_SIGNAL = ("no-signal", "signal-back")
    NO_BEATS = ("no-beats", "beats-back")
    OVERLOAD = ("overload", "caught-up")
    WORKER_DOWN = ("worker-down", "worker-up")
    NOISY = ("noisy", "noise-over")
    ASYSTOLE = ("asystole", "asystole-over")
    VF = ("vf", "vf-over")
    VT = ("vt", "vt-over")
    BRADY = ("brady", "brady-over")
    TACHY = ("tachy", "tachy-over")
    PAUSE = ("pause", "pause-over")

    @property
    def raised_name(self) -> str:
        return self.value[0]

    @property
    def cleared_name(self) -> str:
        return self.value[1]

    @property
    def priority(self) -> str:
        """IEC 60601-1-8: ``"high"`` / ``"medium"`` for arrhythmia alarms, ``"technical"`` otherwise.

        The arrhythmia alarms' priorities are :data:`~ecgedge.analysis.alarms.PRIORITY`.
        """
        return PRIORITY.get(self.raised_name, "technical")

    @classmethod
    def of_alarm(cls, name: str) -> Condition:
        """The condition of an arrhythmia alarm (:class:`~ecgedge.analysis.alarms.AlarmChange`)."""
        return next(c for c in cls if c.raised_name == name)


class _Described:
    """What both kinds of event share: a name, a JSON object, a line of text."""

    stream: str
    time: float

    if TYPE_CHECKING:  # each kind gives them as a field, a class attribute or a property

        @property
        def name(self) -> str: ...

        @property
        def detail(self) -> str: ...

    def as_dict(self) -> dict:
        return {"event": self.name, "stream": self.stream, "time": round(self.time, 4), "detail": self.detail}

    def __str__(self) -> str:
        return f"{_iso(self.time)} {self.stream} {self.name}: {self.detail}"


class _OfCondition(_Described):
    """What the events of a :class:`Condition` add: its priority, in the JSON object and the line of text."""

    condition: Condition

    def as_dict(self) -> dict:
        return {**super().as_dict(), "priority": self.condition.priority}

    def __str__(self) -> str:
        text, priority = super().__str__(), self.condition.priority
        return text if priority == "technical" else text.replace(f" {self.name}:", f" {self.name} [{priority}]:", 1)


@dataclass(frozen=True)
class Raised(_OfCondition):
    """A condition started on a stream.

    Attributes
    ----------
    stream : str
    time : float
        UNIX time it was detected.
    condition : Condition
    detail : str
        What was seen, in words (the exception's message, the cause of a lost signal, ...).
    """

    stream: str
    time: float
    condition: Condition
    detail: str

    @property
    def name(self) -> str:
        return self.condition.raised_name


@dataclass(frozen=True)
class Cleared(_OfCondition):
    """A condition ended on a stream.

    Attributes
    ----------
    stream : str
    time : float
        UNIX time it ended.
    condition : Condition
    lasted : float
        Seconds since it was raised.
    """

    stream: str
    time: float
    condition: Condition
    lasted: float

    @property
    def name(self) -> str:
        return self.condition.cleared_name

    @property
    def detail(self) -> str:
        return f"{self.condition.raised_name} for {self.lasted:.1f} s"


@dataclass(frozen=True)
class RhythmChange(_Described):
    """A stream's rhythm changed (:class:`ecgedge.analysis.rhythm.RhythmAnalyser`).

    Attributes
    ----------
    stream : str
    time : float
        UNIX time of the beat at which it was read.
    rhythm : {"sinus", "af", "unknown"}
        The rhythm entered.
    sample : int
        The R sample of that beat.
    """

    stream: str
    time: float
    rhythm: str
    sample: int
    name = "rhythm-change"

    @property
    def detail(self) -> str:
        return f"{self.rhythm} from sample {self.sample}"

    def as_dict(self) -> dict:
        return {**super().as_dict(), "rhythm": self.rhythm, "sample": self.sample}


@dataclass(frozen=True)
class Relearned(_Described):
    """The patient memory learnt a new supraventricular QRS complex (:class:`ecgedge.analysis.judge.BeatJudge`).

    Its beats were flagged by shape until then; from now on they are the patient's normal beats.

    Attributes
    ----------
    stream : str
    time : float
        UNIX time of the beat at which it was learnt.
    sample : int
        The R sample of the new complex's first beat.
    """

    stream: str
    time: float
    sample: int
    name = "relearned"

    @property
    def detail(self) -> str:
        return f"a new QRS complex, led by P waves, since sample {self.sample}: learnt as the patient's normal beats"

    def as_dict(self) -> dict:
        return {**super().as_dict(), "sample": self.sample}


Event = Raised | Cleared | RhythmChange | Relearned


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ConditionTracker:
    """The conditions active on each stream; turns observations into events, once per change.

    Call :meth:`set` whenever a condition is observed (``active=True`` with a
    detail) or seen to be over (``active=False``): only changes make events.
    A condition ends only once it has not been seen for ``hold`` seconds, so
    a flapping one (a loose electrode, a board toggling its flags every frame)
    makes one event pair, not thousands. The link's and the worker process's
    states are facts and end at once (reconnection and restart backoffs
    already limit how often they change), and so does a noisy stretch (the
    judge already waits for clean beats before it ends one).

    Parameters
    ----------
    hold : float, default=1.0
    """

    def __init__(self, hold: float = 1.0) -> None:
        self.hold = hold
        self._holds = {
            Condition.LINK_DOWN: 0.0,
            Condition.WORKER_DOWN: 0.0,
            Condition.NOISY: 0.0,
            **{c: 0.0 for c in Condition if c.priority != "technical"},
        }
        self._active: dict[tuple[str, Condition], tuple[float, str, float]] = {}  # (since, detail, last seen)
        self.counts: dict[str, int] = {}

    def set(self, stream: str, condition: Condition, active: bool, now: float, detail: str = "") -> Event | None:
        """Record the state of ``condition`` on ``stream`` at UNIX time ``now``; return the event it makes, if any."""
        key = (stream, condition)
        held = self._active.get(key)
        if active:
            self._active[key] = (held[0], held[1], now) if held else (now, detail, now)
            event: Event | None = None if held else Raised(stream, now, condition, detail)
        elif held is None or now - held[2] < self._holds.get(condition, self.hold):
            event = None
        else:
            del self._active[key]
            event = Cleared(stream, now, condition, now - held[0])
        if event is not None:
            self.counts[event.name] = self.counts.get(event.name, 0) + 1
        return event

    def assume(self, stream: str, condition: Condition, now: float, detail: str) -> None:
        """Start with ``condition`` active, without an event (a link is down until it first opens)."""
        self._active[(stream, condition)] = (now, detail, now - self.hold)

    def active(self, stream: str) -> dict[str, str]:
        """``{raised name: detail}`` of the conditions now active on ``stream``."""
        return {c.raised_name: d for (s, c), (_, d, _) in self._active.items() if s == stream}
