"""Every alarm's strip, kept: the filtered ECG the bridge saw around each flagged beat and alarm.

Central stations keep "full disclosure" strips so that a nurse or a cardiologist can review what
raised an alarm. :class:`StripKeeper` holds the last seconds of each stream's filtered signal and,
for each flagged beat and each alarm, cuts :data:`BEFORE_S` seconds before to :data:`AFTER_S`
seconds after it once the stream has got that far (an alarm that ends a stream, such as a lost
link, keeps what came before it). Flags and alarms of one stream that fall inside a strip still
being filled share it, so a run of ventricular beats makes one strip, not one per beat. Sinks with
``write_strips`` store them (:class:`~ecgedge.firmware_bridge.sinks.SqliteSink`, bounded).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

#: Seconds of signal kept before and after a flagged beat or an alarm.
BEFORE_S, AFTER_S = 4.0, 4.0


@dataclass
class Strip:
    """A stretch of one stream's filtered ECG around an alarm.

    Attributes
    ----------
    stream : str
    time : float
        UNIX time of the flag or alarm that opened it.
    kind : str
        ``"beat"`` (a flagged beat) or the event's name (``"link-down"``, ``"rhythm-change"``, ...).
    detail : str
        Why: the beat's reason and distance, or the event's detail.
    fs : float
    start : int
        Board index of ``samples[0]``.
    samples : ndarray of shape (n,), float32
        The ECG (mV) in the bridge's band.
    """

    stream: str
    time: float
    kind: str
    detail: str
    fs: float
    start: int
    samples: np.ndarray


class StripKeeper:
    """Hold each stream's recent signal and cut the strips of its flags and alarms."""

    def __init__(self) -> None:
        self._signal: dict[str, tuple[float, deque]] = {}  # stream -> (fs, deque of (start, chunk))
        self._pending: dict[str, list[dict]] = {}

    def add(self, stream: str, fs: float, start: int, y: np.ndarray) -> None:
        """A filtered chunk of a stream (the hub's ``on_signal``)."""
        held = self._signal.get(stream)
        if held is None or held[0] != fs:
            held = self._signal[stream] = (fs, deque())
        chunks = held[1]
        if chunks and chunks[-1][0] + chunks[-1][1].size != start:
            chunks.clear()  # a restart: the old signal is no longer continuous with the new
        chunks.append((start, np.asarray(y, dtype=np.float32)))
        keep = (BEFORE_S + AFTER_S + 2.0) * fs
        while chunks and start + y.size - (chunks[0][0] + chunks[0][1].size) > keep:
            chunks.popleft()

    def request(self, stream: str, sample: int | None, time: float, kind: str, detail: str, after: bool = True) -> None:
        """Keep the strip around ``sample`` (default: the stream's latest sample).

        ``after=False`` for an alarm after which the stream may send nothing (a lost link): the
        strip is the :data:`BEFORE_S` seconds up to it, cut at once.
        """
        held = self._signal.get(stream)
        if held is None or not held[1]:
            return
        fs, chunks = held
        end = chunks[-1][0] + chunks[-1][1].size
        centre = end if sample is None else sample
        pending = self._pending.setdefault(stream, [])
        if pending and pending[-1]["start"] <= centre < pending[-1]["stop"]:
            return  # inside a strip still being filled: it shows this one too
        pending.append(
            {
                "start": centre - round(BEFORE_S * fs),
                "stop": centre + (round(AFTER_S * fs) if after else 0),
                "time": time,
                "kind": kind,
                "detail": detail,
            }
        )

    def ready(self, ended: bool = False) -> list[Strip]:
        """The strips whose signal has arrived (``ended``: the streams send no more, so all of them)."""
        out = []
        for stream, pending in self._pending.items():
            fs, chunks = self._signal[stream]  # a request needs signal, and a stream's signal is never emptied
            first, end = chunks[0][0], chunks[-1][0] + chunks[-1][1].size
            while pending and (pending[0]["stop"] <= end or ended):
                wanted = pending.pop(0)
                lo = max(wanted["start"], first)
                samples = np.concatenate([c for _, c in chunks])[lo - first : min(wanted["stop"], end) - first]
                out.append(Strip(stream, wanted["time"], wanted["kind"], wanted["detail"], fs, lo, samples))
        return out
