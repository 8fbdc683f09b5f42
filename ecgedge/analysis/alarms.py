"""The arrhythmia alarms a bedside monitor raises from the beats: VT, extreme rates, pauses; runs counted.

The definitions are those of the PhysioNet/CinC Challenge 2015 (taken from ICU monitors), the
defaults of :class:`AlarmLimits`:

- **ventricular tachycardia** (``vt``): 5 or more ventricular beats in a row at over 100 bpm; it
  ends at the next supraventricular beat;
- **extreme bradycardia** (``brady``): 5 beats in a row each at under 40 bpm (60 over its RR
  interval, the beat-to-beat rate: the averaged :class:`~ecgedge.analysis.heart_rate.HeartRateMeter`
  would add its own delay); it ends after 5 beats in a row at 40 or more;
- **extreme tachycardia** (``tachy``): 17 beats in a row each at over 140 bpm; it ends likewise;
- **pause** (``pause``): an RR interval over 3 s (vendors' default), from the beat before it to
  the beat that ends it.

Priorities follow IEC 60601-1-8: the life-threatening ones high (VT, extreme rates, and asystole
and VF / flutter, which the bridge raises from the signal itself: the time without a beat, and
:mod:`ecgedge.analysis.fibrillation`), a pause medium. Ventricular couplets and runs
(3 or more ventricular beats) are counted, not alarmed. Beats in noise are left out: they neither
start nor end an alarm. Every limit is a field of :class:`AlarmLimits`, which the bridge takes per
board.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

#: IEC 60601-1-8 priority of each alarm.
PRIORITY = {"asystole": "high", "vf": "high", "vt": "high", "brady": "high", "tachy": "high", "pause": "medium"}


@dataclass(frozen=True)
class AlarmLimits:
    """When each alarm is raised (defaults: the PhysioNet/CinC Challenge 2015 definitions).

    Parameters
    ----------
    vt_beats : int, default=5
    vt_bpm : float, default=100
    brady_bpm : float, default=40
    brady_beats : int, default=5
    tachy_bpm : float, default=140
    tachy_beats : int, default=17
    pause_s : float, default=3.0
    asystole_s : float, default=4.0
        Seconds of signal without a beat (the bridge raises it; here for one place of limits).
    """

    vt_beats: int = 5
    vt_bpm: float = 100.0
    brady_bpm: float = 40.0
    brady_beats: int = 5
    tachy_bpm: float = 140.0
    tachy_beats: int = 17
    pause_s: float = 3.0
    asystole_s: float = 4.0

    def __post_init__(self) -> None:
        counts = (self.vt_beats, self.brady_beats, self.tachy_beats)
        rates = (self.vt_bpm, self.brady_bpm, self.tachy_bpm, self.pause_s, self.asystole_s)
        if min(counts) < 1 or not all(np.isfinite(r) and r > 0 for r in rates) or self.brady_bpm >= self.tachy_bpm:
            raise ValueError(
                f"alarm limits need counts >= 1, finite positive rates and seconds, and brady below tachy; got {self}"
            )


class AlarmChange(NamedTuple):
    """An alarm raised or ended.

    Attributes
    ----------
    name : {"vt", "brady", "tachy", "pause"}
    active : bool
        True when raised, False when it ended.
    sample : int
        The R sample where it started (raised) or ended.
    detail : str
    """

    name: str
    active: bool
    sample: int
    detail: str


class ArrhythmiaAlarms:
    """Raise and end one stream's arrhythmia alarms, beat by beat.

    Parameters
    ----------
    limits : AlarmLimits, optional

    Attributes
    ----------
    active : set of str
    counts : dict
        ``"couplet"`` and ``"run"``: ventricular couplets and runs (3 or more) seen.

    Examples
    --------
    >>> alarms = ArrhythmiaAlarms()
    >>> changes = [alarms.add(i, 0.45, ventricular=True) for i in range(6)]
    >>> [c.name for c in changes[4]], sorted(alarms.active)
    (['vt'], ['vt'])
    >>> alarms.add(6, 0.9, ventricular=False)[0].active, alarms.counts
    (False, {'couplet': 0, 'run': 1})
    """

    def __init__(self, limits: AlarmLimits | None = None) -> None:
        self.limits = limits or AlarmLimits()
        self.active: set[str] = set()
        self.counts = {"couplet": 0, "run": 0}
        self._run: list[tuple[int, float]] = []  # (sample, rr) of the ventricular beats in a row
        self._last_sample: int | None = None
        self._slow = self._fast = self._not_slow = self._not_fast = 0

    def add(self, sample: int, rr: float, ventricular: bool, usable: bool = True) -> list[AlarmChange]:
        """Take the next beat; return the alarms it raised or ended.

        Parameters
        ----------
        sample : int
            Its R sample.
        rr : float
            Seconds since the previous beat.
        ventricular : bool
            Whether its QRS is ventricular (unlike the patient's normal ones).
        usable : bool, default=True
            False for a beat in noise.
        """
        changes: list[AlarmChange] = []
        previous, self._last_sample = self._last_sample, sample
        if not usable:
            return changes
        lim = self.limits
        if np.isfinite(rr) and rr > lim.pause_s and previous is not None:
            changes += [
                AlarmChange("pause", True, previous, f"no beat for {rr:.1f} s"),
                AlarmChange("pause", False, sample, f"{rr:.1f} s"),
            ]
        changes += self._ventricular(sample, rr, ventricular)
        if np.isfinite(rr) and rr > 0:
            changes += self._rates(sample, 60.0 / rr)
        return changes

    def _ventricular(self, sample: int, rr: float, ventricular: bool) -> list[AlarmChange]:
        if ventricular:
            self._run.append((sample, rr))
            intervals = [r for _, r in self._run[1:] if np.isfinite(r)]
            fast = bool(intervals) and 60.0 / np.mean(intervals) > self.limits.vt_bpm
            if "vt" not in self.active and len(self._run) >= self.limits.vt_beats and fast:
                self.active.add("vt")
                rate = 60.0 / np.mean(intervals)
                return [
                    AlarmChange("vt", True, self._run[0][0], f"{len(self._run)} ventricular beats at {rate:.0f} bpm")
                ]
            return []
        run, self._run = len(self._run), []
        if run == 2:
            self.counts["couplet"] += 1
        elif run >= 3:
            self.counts["run"] += 1
        if "vt" in self.active:
            self.active.discard("vt")
            return [AlarmChange("vt", False, sample, f"after {run} ventricular beats")]
        return []

    def _rates(self, sample: int, heart_rate: float) -> list[AlarmChange]:
        lim, changes = self.limits, []
        self._slow, self._not_slow = (self._slow + 1, 0) if heart_rate < lim.brady_bpm else (0, self._not_slow + 1)
        self._fast, self._not_fast = (self._fast + 1, 0) if heart_rate > lim.tachy_bpm else (0, self._not_fast + 1)
        for name, on, off, beats, word in (
            ("brady", self._slow, self._not_slow, lim.brady_beats, "under"),
            ("tachy", self._fast, self._not_fast, lim.tachy_beats, "over"),
        ):
            limit = lim.brady_bpm if name == "brady" else lim.tachy_bpm
            if name not in self.active and on >= beats:
                self.active.add(name)
                changes.append(
                    AlarmChange(name, True, sample, f"{beats} beats {word} {limit:g} bpm (last {heart_rate:.0f} bpm)")
                )
            elif name in self.active and off >= beats:
                self.active.discard(name)
                changes.append(AlarmChange(name, False, sample, f"{beats} beats back within {limit:g} bpm"))
        return changes
