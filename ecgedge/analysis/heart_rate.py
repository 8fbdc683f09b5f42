"""The heart rate a monitor shows, with its averaging disclosed and shown as lost when it is.

IEC 60601-2-27 (and ANSI/AAMI EC13 before it) asks a cardiac monitor to disclose how it averages
the heart rate and how fast it follows a change. :class:`HeartRateMeter` does what bedside monitors
commonly do: 60 over the mean of the last :data:`AVERAGED` RR intervals, and over the last
:data:`SHORT` when those are long (a slow rate would otherwise take 12 long intervals to show), with
every beat counted, ventricular ones included (the ventricles' rate is what perfuses). In AF the
mean of 12 irregular intervals is the ventricular rate, as a monitor shows it.

It is *lost* (None), never a stale number, while fewer than :data:`SHORT` usable intervals are
known: after the stream starts or restarts, and from a beat in noise until :data:`SHORT` clean
intervals come again. The bridge also shows it lost while the link, the signal or the beats are.
"""

from __future__ import annotations

from collections import deque

import numpy as np

#: RR intervals averaged.
AVERAGED = 12
#: ... the last this many when their mean is over :data:`LONG_RR_S`, and the fewest that give a rate.
SHORT = 4
#: Seconds: a mean of the last :data:`SHORT` intervals this long or longer (40 bpm or slower) is a slow rhythm.
LONG_RR_S = 1.5
#: RR intervals (s) a rate is made of: a shorter one is a false beat (left out); after a longer one
#: (asystole, a lost signal) the rate is lost until :data:`SHORT` intervals come again.
RR_RANGE_S = (0.2, 6.0)


class HeartRateMeter:
    """Follow one stream's heart rate beat by beat.

    Examples
    --------
    >>> meter = HeartRateMeter()
    >>> [meter.add(0.75) for _ in range(4)][-1]
    80.0
    >>> meter.add(0.5, usable=False) is None  # a beat in noise: lost until 4 clean intervals
    True
    >>> [meter.add(0.5) for _ in range(4)][-1]
    120.0
    """

    def __init__(self) -> None:
        self._intervals: deque[float] = deque(maxlen=AVERAGED)

    def add(self, rr: float, usable: bool = True) -> float | None:
        """Take the next beat's RR interval (s); return the heart rate (bpm) after it, or None when lost.

        Parameters
        ----------
        rr : float
            Seconds since the previous beat (NaN after a restart, or longer than
            :data:`RR_RANGE_S`: the meter starts afresh).
        usable : bool, default=True
            False for a beat in noise: its interval is not counted and the rate is lost until
            :data:`SHORT` clean intervals follow.
        """
        if not usable or not np.isfinite(rr) or rr > RR_RANGE_S[1]:
            self._intervals.clear()
            return None
        if rr >= RR_RANGE_S[0]:
            self._intervals.append(float(rr))
        return self.rate

    def restart(self) -> None:
        """Forget the intervals (the stream restarted): lost until :data:`SHORT` intervals come again."""
        self._intervals.clear()

    @property
    def rate(self) -> float | None:
        """The heart rate (bpm) now, or None when lost."""
        if len(self._intervals) < SHORT:
            return None
        recent = list(self._intervals)[-SHORT:]
        mean = float(np.mean(recent)) if np.mean(recent) >= LONG_RR_S else float(np.mean(self._intervals))
        return round(60.0 / mean, 1)
