"""Is this an ECG at all? Flat lines and ADC rails, judged second by second on the raw counts.

An electrode that lost contact without the board noticing, a shorted input
or a broken amplifier give a flat line, a signal pinned to an ADC rail,
one that jumps between the two rails, or isolated samples stuck at a rail
(for example every 10th sample at -32768). None of them give beats, and
spikes to a rail can even look like R peaks. :class:`SignalCheck` looks at
each full second of counts and says what is wrong, or None.

Asystole versus no signal. A heart that stops leaves the lead on its baseline: low amplitude, but
never still, for an electrode on the skin always carries the electrode's and the amplifier's noise,
mains pick-up and the baseline's movement with breathing, microvolts to tens of microvolts that an
ECG converter (a few microvolts a step) sees change from sample to sample. That is a *flat line*
(under :data:`FLAT_MV`), and may be the heart: :func:`asystole_readable`. A second in which every
sample is the *same count* has no analogue signal behind it at all (a dropped or zero-filled
stream, an input cut off before the converter): a technical condition, ``no-signal``, never an
asystole, as a monitor reports lead-off and not asystole. So is a converter pinned at its rails.
"""

from __future__ import annotations

import numpy as np

#: Below this peak-to-peak amplitude (mV) over a second, the line is flat (an ECG's QRS is ~1 mV).
FLAT_MV = 0.05
#: A second with at least this fraction of samples at an ADC rail is not an ECG.
RAIL_FRACTION = 0.02
#: What a second of identical counts is: no signal reaches the converter (not a flat line, which may be asystole).
CONSTANT = "no signal: every sample the same count (nothing reaches the ADC)"


def asystole_readable(problem: str | None) -> bool:
    """Whether a stream's signal, with the electrodes on, can show an asystole: the hub's rule for raising it.

    A flat line may be the heart's: with no beat the ECG lies on its baseline. A railed or
    clipped ADC, or a signal that does not change at all, is no reading of the heart: a stream with
    such a :attr:`SignalCheck.problem` is ``no-signal``, not asystole.

    Examples
    --------
    >>> asystole_readable(None), asystole_readable("flat line: 12.0 uV peak to peak over 360 samples")
    (True, True)
    >>> asystole_readable("saturated: the signal sits at the ADC rails"), asystole_readable(CONSTANT)
    (False, False)
    """
    return problem is None or problem.startswith("flat line")


def adc_rails(adc_bits: int, baseline: int) -> np.ndarray:
    """The counts an ADC is pinned at when saturated: the int16 extremes of the wire, and the ADC's own ends.

    A board whose baseline is positive has an unsigned ADC (``0 .. 2**bits - 1``);
    otherwise a signed one (``-2**(bits-1) .. 2**(bits-1) - 1``). ``adc_bits``
    of 0 (unknown, as for ASCII boards) adds nothing.
    """
    rails = {-(2**15), 2**15 - 1}
    if 1 <= adc_bits <= 16:
        rails |= {0, 2**adc_bits - 1} if baseline > 0 else {-(2 ** (adc_bits - 1)), 2 ** (adc_bits - 1) - 1}
    return np.array(sorted(rails), dtype=np.int64)


class SignalCheck:
    """Judge a stream's raw counts one window (default one second) at a time.

    A problem is reported once two windows in a row show one (the first bad
    window may straddle the change), with the latest window's words.

    Parameters
    ----------
    window : int
        Samples per verdict (the sample rate, for one second).
    gain : float
        ADC counts per mV.
    rails : ndarray of int
        Counts that mean saturation (:func:`adc_rails`).

    Attributes
    ----------
    problem : str or None
        The last complete window's verdict: None (an ECG may be there) or what is wrong.
    """

    def __init__(self, window: int, gain: float, rails: np.ndarray) -> None:
        self.window = max(1, int(window))
        self.gain = float(gain)
        self.rails = rails
        self.problem: str | None = None
        self._previous: str | None = None
        self._held: list[np.ndarray] = []
        self._n = 0

    def add(self, counts: np.ndarray) -> None:
        """Take the next raw counts (one lead); update :attr:`problem` at each full window."""
        self._held.append(counts)
        self._n += counts.size
        while self._n >= self.window:
            held = np.concatenate(self._held)
            verdict = self._judge(held[: self.window])
            self.problem = verdict if verdict and self._previous else None
            self._previous = verdict
            rest = held[self.window :]
            self._held, self._n = [rest], rest.size

    def reset(self) -> None:
        """Forget the samples held (a gap, lead-off or new format); keep the last verdicts."""
        self._held, self._n = [], 0

    def _judge(self, x: np.ndarray) -> str | None:
        at_rail = float(np.isin(x, self.rails).mean())
        if at_rail >= 0.9:
            return "saturated: the signal sits at the ADC rails"
        if at_rail >= RAIL_FRACTION:
            return f"{100 * at_rail:.0f} % of samples at an ADC rail (stuck or clipped samples)"
        if x.max() == x.min():
            return CONSTANT
        ptp = (int(x.max()) - int(x.min())) / self.gain
        if ptp < FLAT_MV:
            return f"flat line: {ptp * 1000:.1f} uV peak to peak over {x.size} samples"
        return None
