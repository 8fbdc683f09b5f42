"""What the bedside page shows, gathered on the hub's side without ever making the hub wait.

The hub calls :class:`LiveFeed`'s ``on_signal``, ``on_beats`` and ``on_event`` from its own thread.
Each call updates the boards' state and appends display frames (plain dicts, sent as JSON) to every
viewer's own bounded queue: a viewer that reads slowly, pauses or died loses its oldest display
frames (counted), never a beat, and the hub never waits for it. Beats, flags and events are
written to the sinks before the hub reports them, whatever a viewer does; the page is a view.

The strip is the filtered ECG (the bridge's 0.5-40 Hz band) decimated to about :data:`DISPLAY_HZ`
by averaging, the last :data:`STRIP_S` seconds of each board kept for a page that connects.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecgedge.firmware_bridge.events import Condition

#: Samples per second the page draws.
DISPLAY_HZ = 90.0
#: Seconds of strip kept for each board (what a page shows when it connects).
STRIP_S = 10.0
#: Display frames a viewer's queue holds; older ones are dropped for a viewer that falls behind.
QUEUE_FRAMES = 512
#: Conditions during which a board's heart rate and rhythm are not measured.
MONITORING_LOST = frozenset(
    {
        Condition.LINK_DOWN,
        Condition.BOARD_ERROR,
        Condition.NO_DATA,
        Condition.LEAD_OFF,
        Condition.NO_SIGNAL,
        Condition.NO_BEATS,
        Condition.WORKER_DOWN,
    }
)
#: Lines (alarm episodes, technical groups, rhythm changes) kept for the page's list across boards.
ALARMS_KEPT = 200
#: Seconds a technical condition lasts before the page announces it; a shorter flicker is only counted on
#: its board's technical line (IEC 60601-1-8 lets a technical alarm condition wait out a transient).
TECHNICAL_HOLD_S = 10.0
#: A board's technical conditions that come again within this many seconds of the last one's end join
#: the same line.
TECHNICAL_GROUP_S = 60.0


class Viewer:
    """One connected page: a bounded queue of display frames and a way to wake its writer.

    Parameters
    ----------
    wake : callable, optional
        Called (from the hub's thread) after frames were added; the server passes one that is
        safe to call from another thread.
    size : int, default=QUEUE_FRAMES
    """

    def __init__(self, wake=None, size: int = QUEUE_FRAMES) -> None:
        self.frames: deque[dict] = deque(maxlen=size)
        self.dropped = 0
        self.wake = wake

    def put(self, frame: dict) -> None:
        if len(self.frames) == self.frames.maxlen:
            self.dropped += 1
        self.frames.append(frame)

    def take(self) -> list[dict]:
        """Every frame queued so far, oldest first."""
        out = []
        while self.frames:
            out.append(self.frames.popleft())
        return out


@dataclass
class BoardState:
    """What a tile shows of one board."""

    name: str
    fs: float | None = None
    link: str = "connecting"
    mode: str = "waiting"
    learning_left_s: float | None = None
    rhythm: str = "unknown"
    quality: str = "ok"
    heart_rate: float | None = None
    beats: int = 0
    flagged: int = 0
    alarms: dict = field(default_factory=dict)  # name -> detail
    strip: deque = field(default_factory=lambda: deque(maxlen=round(STRIP_S * DISPLAY_HZ)))
    strip_end: float = 0.0  # seconds of board signal up to the strip's last value
    marks: deque = field(default_factory=lambda: deque(maxlen=64))  # recent beats drawn on the strip
    _rest: np.ndarray = field(default_factory=lambda: np.empty(0))

    def public(self) -> dict:
        return {
            "board": self.name,
            "link": self.link,
            "mode": self.mode,
            "learning_left_s": self.learning_left_s,
            "rhythm": self.rhythm,
            "quality": self.quality,
            "heart_rate": self.heart_rate,
            "beats": self.beats,
            "flagged": self.flagged,
            "alarms": dict(self.alarms),
        }


class LiveFeed:
    """The boards' state and the display frames of every viewer."""

    def __init__(self) -> None:
        self.boards: dict[str, BoardState] = {}
        self.alarms: deque[dict] = deque(maxlen=ALARMS_KEPT)  # the list's lines, newest first
        self._open: dict[tuple[str, str], dict] = {}  # (board, alarm or "technical") -> its line
        self._lines = 0
        self.viewers: set[Viewer] = set()
        self._dropped_by_gone = 0
        self._lock = threading.Lock()

    # -- viewers (the server's side) --
    def subscribe(self, viewer: Viewer) -> dict:
        """Add a viewer; return the snapshot it starts from (boards, their strips, the alarm list)."""
        with self._lock:
            self.viewers.add(viewer)
            return self._snapshot()

    def unsubscribe(self, viewer: Viewer) -> None:
        with self._lock:
            if viewer in self.viewers:
                self.viewers.discard(viewer)
                self._dropped_by_gone += viewer.dropped

    def snapshot(self) -> dict:
        """Every board's state and strip, and the alarm list (taken while the hub cannot change them)."""
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> dict:
        boards = []
        for state in self.boards.values():
            boards.append(
                {
                    **state.public(),
                    "fs": DISPLAY_HZ,
                    "strip": [round(v, 3) for v in state.strip],
                    "strip_end": state.strip_end,
                    "marks": list(state.marks),
                }
            )
        return {
            "type": "snapshot",
            "boards": boards,
            "alarms": [_copy(line) for line in self.alarms],
            "time": time.time(),
            "technical_hold_s": TECHNICAL_HOLD_S,
        }

    # -- the hub's side --
    def add_board(self, name: str) -> None:
        with self._lock:
            self.boards.setdefault(name, BoardState(name))
            self._publish({"type": "board", **self.boards[name].public()})
            self._wake()

    def on_signal(self, stream: str, fs: float, start: int, y: np.ndarray) -> None:
        """A filtered chunk of a board (mV), starting at board index ``start``."""
        with self._lock:
            state = self.boards.setdefault(stream, BoardState(stream))
            state.fs = fs
            step = max(1, round(fs / DISPLAY_HZ))
            values = np.concatenate((state._rest, np.asarray(y, dtype=float)))
            n = values.size // step * step
            state._rest = values[n:]
            shown = values[:n].reshape(-1, step).mean(axis=1) if n else np.empty(0)
            if not shown.size:
                return
            state.strip.extend(shown.tolist())
            state.strip_end = (start + y.size - state._rest.size) / fs
            self._publish(
                {
                    "type": "signal",
                    "board": stream,
                    "end": round(state.strip_end, 3),
                    "values": [round(v, 3) for v in shown.tolist()],
                }
            )
            self._wake()

    def on_beats(self, scored) -> None:
        """A committed micro-batch of :class:`~ecgedge.analysis.scored.ScoredBeat`."""
        with self._lock:
            touched = {}
            for s in scored:
                b, v = s.beat, s.verdict
                state = self.boards.setdefault(b.stream, BoardState(b.stream))
                state.beats += 1
                state.flagged += int(v.anomaly)
                state.mode, state.rhythm, state.quality = v.mode, v.rhythm, v.quality
                state.heart_rate = v.heart_rate  # the analysis's meter; None (shown as lost) when it is
                state.learning_left_s = None if v.learning_left_s is None else round(v.learning_left_s)  # the judge's
                mark = {
                    "t": round(b.sample / state.fs, 3) if state.fs else None,
                    "flag": v.anomaly,
                    "why": v.reason if v.anomaly else None,
                    "quality": v.quality,
                }
                state.marks.append(mark)
                touched[b.stream] = state
                self._publish({"type": "beat", "board": b.stream, **mark})
            for state in touched.values():
                self._publish({"type": "board", **state.public()})
            self._wake()

    def on_event(self, event) -> None:
        """A committed :mod:`~ecgedge.firmware_bridge.events` event."""
        with self._lock:
            state = self.boards.setdefault(event.stream, BoardState(event.stream))
            name = event.name
            condition = getattr(event, "condition", None)
            raised = condition is not None and name == condition.raised_name  # every condition raised is an alarm
            if raised:
                state.alarms[name] = event.detail
                if condition in MONITORING_LOST:  # a value no longer measured is shown as lost, not as the last one
                    state.heart_rate, state.rhythm = None, "unknown"
            elif condition is not None:
                state.alarms.pop(condition.raised_name, None)
            if name in ("link-down", "link-up"):
                state.link = "down" if name == "link-down" else "up"
            if name == "rhythm-change":
                state.rhythm = event.rhythm
            line = self._line(event, condition, raised)
            self._publish({"type": "alarm", **_copy(line)})
            self._publish({"type": "board", **state.public()})
            self._wake()

    def _line(self, event, condition: Condition | None, raised: bool) -> dict:
        """The alarm list's line an event opens or updates (the lock is held).

        An arrhythmia alarm is one line from its start to its end; a board's technical conditions
        share one line while they come and go (counted, the active ones named, with the time each
        started, so the page announces one only after :data:`TECHNICAL_HOLD_S`); a rhythm change or
        a relearned complex is a line of its own.
        """
        board, time_ = event.stream, round(event.time, 3)
        if condition is None:
            return self._new_line(
                board, event.name, time_, event.detail, "information", alarm=event.name == "rhythm-change"
            )
        technical = condition.priority == "technical"
        key = (board, "technical" if technical else condition.raised_name)
        line = self._open.get(key)
        if technical and line is not None and line["end"] is not None and time_ - line["end"] > TECHNICAL_GROUP_S:
            line = None
        if line is None:
            if not raised:  # an end whose start this page never saw (it started before the bridge served it)
                return self._new_line(board, event.name, time_, event.detail, condition.priority, alarm=False)
            event_name = "technical" if technical else condition.raised_name
            line = self._open[key] = self._new_line(board, event_name, time_, event.detail, condition.priority)
        if technical:
            active, counts = line["active"], line["counts"]
            if raised:
                active[condition.raised_name] = time_
                counts[condition.raised_name] = counts.get(condition.raised_name, 0) + 1
                line["detail"] = f"{condition.raised_name}: {event.detail}"
            else:
                active.pop(condition.raised_name, None)
            line["end"] = None if active else time_
        elif raised:
            line["detail"] = event.detail
        else:
            line["end"] = time_
            del self._open[key]
        line["alarm"] = line["end"] is None
        return line

    def _new_line(self, board: str, name: str, time_: float, detail: str, priority: str, alarm: bool = True) -> dict:
        self._lines += 1
        line: dict[str, Any] = {
            "id": self._lines,
            "time": time_,
            "end": None,
            "board": board,
            "event": name,
            "detail": detail,
            "alarm": alarm,
            "priority": priority,
        }
        if name == "technical":
            line.update(active={}, counts={})
        self.alarms.appendleft(line)
        return line

    def _publish(self, frame: dict) -> None:
        """Queue a frame for every viewer (the lock is held); never blocks."""
        for viewer in self.viewers:
            viewer.put(frame)

    def _wake(self) -> None:
        """Tell each viewer's writer that frames wait (once per hub call, not per frame)."""
        for viewer in self.viewers:
            if viewer.wake is not None and viewer.frames:
                viewer.wake()

    @property
    def dropped(self) -> int:
        """Display frames dropped for slow viewers, those gone included."""
        with self._lock:
            return self._dropped_by_gone + sum(v.dropped for v in self.viewers)


def _copy(line: dict) -> dict:
    """A line as it is now, for a viewer (the feed changes its own later)."""
    return {key: dict(value) if isinstance(value, dict) else value for key, value in line.items()}
