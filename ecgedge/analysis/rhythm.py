"""The rhythm of a stream from its RR series: sinus, atrial fibrillation / flutter, or unknown.

Atrial fibrillation makes the ventricles beat irregularly irregularly: successive RR intervals
differ by a large part of an interval, beat after beat. Sinus rhythm changes slowly (breathing,
effort), and ectopic beats break it only here and there. So, as the real-time detectors built on
RR irregularity do (Petrenas et al. 2015; Lake & Moorman 2011 for measuring irregularity relative
to the rate), :class:`RhythmAnalyser` looks at the last ``window`` successive differences of
normal-to-normal intervals, each over the mean of its two intervals, and reads the rhythm as AF
when their median is above ``threshold``.

Five rules keep ectopy and noise from being read as AF:

- Only intervals between two beats of normal (supraventricular) shape count: a ventricular beat
  and the intervals on either side of it are left out, so bigeminy, couplets and ventricular runs
  do not make the rhythm irregular.
- A premature beat followed by a full compensatory pause (the two intervals add up to two
  ordinary ones: the sinus node kept its pace, so the beat did not come from it) is ectopic and
  left out with its intervals, whatever its shape: bigeminy read before the patient's shapes
  are learnt is not AF.
- The median ignores up to half the window: scattered premature beats (two large differences
  each) do not move it.
- An irregular rhythm whose normal beats share their P waves is not AF
  (:class:`~ecgedge.analysis.atrial.AtrialActivity`): sinus arrhythmia, false beats and ectopy
  read before the patient's shapes are learnt have P waves; fibrillation has none. The rule can
  only keep AF from being read, and only where the rate leaves the P waves readable.
- The rhythm changes only when ``window`` beats in a row read the other rhythm (a burst of
  atrial ectopy is not an AF episode), and beats in noise are left out: after more than
  ``window`` beats in a row without a usable interval the rhythm is ``"unknown"`` again, and
  after as many without a normal beat the P waves are forgotten too. Bigeminy has no
  normal-to-normal interval, but the P waves of its normal beats are current: they stay, so a
  beat can still be read as led by them.

The two RR constants: ``window=16`` doubles Petrenas et al.'s 8 beats, for episodes that hold about
ten seconds, not one burst; ``threshold=0.08`` lies between sinus rhythm's beat-to-beat change
(about 2-5 % of the interval) and AF's (nearly independent intervals with a coefficient of
variation of 0.15 or more: a median successive difference of 0.14 or more). It was 0.1, set a
priori, until the P-wave rule took over keeping irregular sinus rhythms out; fit then
leave-one-patient-out on the shared MIT-BIH records, every fold chose 0.06 or 0.08.
``docs/rhythm.md`` shows how the AF figures vary with the constants.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ecgedge.analysis.atrial import AtrialActivity

#: A beat earlier than this share of the recent median interval is premature (the judge's default limit).
PREMATURE = 0.85
#: A premature beat whose interval and the next add up to two recent intervals within this share is ectopic.
COMPENSATION = 0.2
#: RR intervals (s) outside this range are not a rhythm's (a missed or a false beat): 300 to 20 bpm.
RR_RANGE = (0.2, 3.0)


class RhythmAnalyser:
    """Follow one stream's rhythm beat by beat, causally.

    Parameters
    ----------
    window : int, default=16
        Successive differences of normal-to-normal intervals looked at; also the beats in a row
        that must read a new rhythm before it is reported.
    threshold : float, default=0.08
        Median relative successive difference above which the rhythm reads as AF.
    atrial_threshold : float or None, default=0.5
        An irregular rhythm whose normal beats share their P waves this well
        (:class:`~ecgedge.analysis.atrial.AtrialActivity`) is not AF; None: the RR series alone.

    Attributes
    ----------
    rhythm : {"sinus", "af", "unknown"}
        The rhythm after the last beat.

    Examples
    --------
    >>> analyser = RhythmAnalyser(window=4)
    >>> [analyser.add(0.8) for _ in range(8)][-1]
    'sinus'
    >>> rr = np.random.RandomState(0).uniform(0.4, 1.0, 12)
    >>> [analyser.add(r) for r in rr][-1]
    'af'
    """

    def __init__(self, window: int = 16, threshold: float = 0.08, atrial_threshold: float | None = 0.5) -> None:
        if window < 2:
            raise ValueError(f"window must be >= 2, got {window}")
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.window = window
        self.threshold = threshold
        self.atrial_threshold = atrial_threshold
        self.atrial = AtrialActivity(window, atrial_threshold) if atrial_threshold is not None else None
        self.rhythm = "unknown"
        self._differences: deque[float] = deque(maxlen=window)
        self._last_nn: float | None = None
        self._last_normal = False
        self._missed = 0
        self._since_normal = 0  # beats since the last clean beat of normal shape
        self._agree = 0
        self._added = False
        self._previous_rr: float | None = None
        self._recent: deque[float] = deque(maxlen=window)  # other intervals of normal-shaped beats
        self._recent_nn: deque[float] = deque(maxlen=window)

    @property
    def irregularity(self) -> float | None:
        """Median relative successive difference of the window, or None while it holds too few."""
        return self.recent_irregularity(self.window)

    def recent_irregularity(self, n: int) -> float | None:
        """Median relative successive difference of the last ``n`` in the window, or None while it holds too few."""
        recent = list(self._differences)[-n:]
        if len(recent) < max(2, min(n, self.window) // 2):
            return None
        return float(np.median(recent))

    def add(self, rr: float, normal: bool = True, usable: bool = True, atrial: np.ndarray | None = None) -> str:
        """Take the next beat and return the rhythm after it.

        Parameters
        ----------
        rr : float
            Seconds since the previous beat (NaN when unknown: after a restart).
        normal : bool, default=True
            Whether the beat has a normal (supraventricular) shape.
        usable : bool, default=True
            False for a beat in noise: it is left out like an ectopic beat.
        atrial : ndarray, optional
            The beat's atrial segment (:attr:`ecgedge.analysis.beats.Beat.atrial`).

        Returns
        -------
        str
            ``"sinus"``, ``"af"`` or ``"unknown"``.
        """
        plausible = bool(np.isfinite(rr) and RR_RANGE[0] <= rr <= RR_RANGE[1])
        after_normal = self._last_normal  # the previous T wave is a conducted beat's
        if self._compensates(rr, plausible):  # the last beat was ectopic: take back what it added
            if self._added:
                self._differences.pop()
            if self._last_nn is not None:
                self._recent_nn.pop()
            self._last_normal = False
        normal = normal and usable
        if normal and atrial is not None and self.atrial is not None:
            self.atrial.add(atrial, rr, after_normal=after_normal)
        nn = normal and self._last_normal and plausible
        last_nn = self._last_nn
        self._added = nn and last_nn is not None
        if nn and last_nn is not None:
            self._differences.append(abs(rr - last_nn) / (0.5 * (rr + last_nn)))
        self._last_nn = float(rr) if nn else None
        self._last_normal = normal
        self._previous_rr = float(rr) if plausible and normal else None
        if self._previous_rr is not None:
            (self._recent_nn if nn else self._recent).append(self._previous_rr)
        self._missed = 0 if nn else self._missed + 1
        self._since_normal = 0 if normal else self._since_normal + 1
        if self._missed > self.window:  # long without a usable interval: the intervals seen are stale
            self._differences.clear()
            self.rhythm, self._agree = "unknown", 0
        if self._since_normal > self.window and self.atrial is not None:  # and the P waves, without a normal beat
            self.atrial.clear()
        level = self.irregularity
        if level is not None:
            reading = (
                "af" if level > self.threshold and not (self.atrial is not None and self.atrial.organised) else "sinus"
            )
            self._agree = self._agree + 1 if reading != self.rhythm else 0
            if self._agree >= self.window:
                self.rhythm, self._agree = reading, 0
        return self.rhythm

    def _compensates(self, rr: float, plausible: bool) -> bool:
        """Whether ``rr`` is the full compensatory pause after a premature last beat (ventricular ectopy).

        The last interval was under ``PREMATURE`` of the recent normal-to-normal intervals'
        median (of all recent intervals while there are too few) and the two together last two
        of those within ``COMPENSATION``: the sinus node kept its pace, so the last beat did not
        come from it.
        """
        recent = self._recent_nn if len(self._recent_nn) >= 3 else self._recent_nn + self._recent
        if not plausible or self._previous_rr is None or len(recent) < 3:
            return False
        reference = float(np.median(recent))
        return (
            self._previous_rr < PREMATURE * reference
            and abs(self._previous_rr + rr - 2 * reference) < COMPENSATION * reference
        )

    def restart(self) -> None:
        """Forget the intervals and P waves (the stream restarted: a gap, lead-off); the rhythm is unknown again."""
        self.rhythm = "unknown"
        self._differences.clear()
        self._last_nn = self._previous_rr = None
        self._last_normal = self._added = False
        self._missed = self._since_normal = self._agree = 0
        self._recent.clear()
        self._recent_nn.clear()
        if self.atrial is not None:
            self.atrial.clear()
