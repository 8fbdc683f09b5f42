"""The per-beat decision of a stream: learning, adapted to the patient, or by a fixed threshold.

One definition for every path that flags beats: the live :class:`~ecgedge.firmware_bridge.hub.Hub`
and the offline path (:mod:`ecgedge.firmware_bridge.offline`, which ``ecgedge scan`` and
``ecgedge evaluate`` run) both keep one :class:`BeatJudge` per stream and feed it the stream's
beats and scores in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ecgedge.calibration import BeatContext, PatientCalibrator, PatientMemory

#: Seconds of a stream the bridge learns its patient from, unless told otherwise (a bedside monitor's 5 minutes).
DEFAULT_ADAPT_S = 300.0
#: Longest RR interval counted into the learning window (s): a gap in the signal is not time spent learning.
MAX_RR_S = 3.0


class BeatView(NamedTuple):
    """What a judge reads of a beat, for paths that keep arrays rather than :class:`Beat` objects."""

    model_input: np.ndarray
    rr: float


@dataclass(frozen=True)
class Verdict:
    """The decision on one beat.

    Attributes
    ----------
    mode : {"fixed", "learning", "adapted"}
        ``"fixed"``: by a score threshold (the bundle's, or the patient's
        learnt by ``--calibrate``); ``"learning"``: the stream's first beats,
        never flagged; ``"adapted"``: by the patient's memory.
    threshold : float or None
        The score threshold of a ``"fixed"`` verdict, else None.
    distance : float or None
        An ``"adapted"`` beat's distance to the patient's normal beats, in
        limits (:meth:`ecgedge.calibration.PatientMemory.distance`).
    anomaly : bool
        Score below the threshold, or distance above 1.
    """

    mode: str
    threshold: float | None
    distance: float | None
    anomaly: bool


class BeatJudge:
    """Judge one stream's beats, in stream order.

    Parameters
    ----------
    calibration_beats : int or None, default=None
        Learn a score threshold from the stream's first this many beats
        (:class:`ecgedge.calibration.PatientCalibrator`), then judge by it.
    adapt_s : float or None, default=None
        Adapt to the patient: learn from the stream's first this many
        seconds of beats (signal time, the sum of their RR intervals, so a
        recording played faster than real time learns as much); the beats
        the model accepts become the patient's memory
        (:class:`ecgedge.calibration.PatientMemory`), which judges every
        later beat. Not with ``calibration_beats``.
    memory : PatientMemory, optional
        A memory to start from (a restarted bridge resumes the patient's);
        default: a new one with default settings.

    Without either, every beat is judged by the model's threshold.

    Examples
    --------
    >>> BeatJudge().judge(-0.5, offset=-0.2)
    Verdict(mode='fixed', threshold=-0.2, distance=None, anomaly=True)
    >>> BeatJudge(calibration_beats=2).judge(-0.1, offset=-0.2).mode
    'learning'
    """

    def __init__(self, calibration_beats: int | None = None, adapt_s: float | None = None,
                 memory: PatientMemory | None = None) -> None:
        if calibration_beats and adapt_s:
            raise ValueError("a stream is calibrated (calibration_beats) or adapted (adapt_s), not both")
        self.calibrator = PatientCalibrator(calibration_beats) if calibration_beats else None
        self.adapt_s = adapt_s
        self.memory = memory if memory is not None else (PatientMemory() if adapt_s else None)
        self.context = BeatContext()
        self._learnt_s = 0.0
        self._unsaved = 0
        self._saved = False

    @property
    def learning(self) -> bool:
        """Whether the stream's threshold or memory is still being learnt."""
        if self.memory is not None:
            return not self.memory.ready
        return self.calibrator is not None and not self.calibrator.ready

    def resume(self, memory: PatientMemory) -> None:
        """Judge by a saved patient memory from now on (a restarted bridge needs no relearning)."""
        self.memory, self._saved = memory, True

    def replay(self, scores) -> None:
        """Feed stored learning scores to the calibrator (a restarted bridge resumes its learning)."""
        if self.calibrator is not None:
            self.calibrator.update(scores)

    def state_to_save(self, every: int = 256) -> dict | None:
        """The memory's state when it is new or ``every`` beats have changed it since, else None."""
        if self.memory is None or not self.memory.ready or (self._saved and self._unsaved < every):
            return None
        self._saved, self._unsaved = True, 0
        return self.memory.state()

    def judge(self, score: float, offset: float, beat=None) -> Verdict:
        """Decide one beat (the next in stream order).

        Parameters
        ----------
        score : float
            The model's score (higher is more normal).
        offset : float
            The model's threshold (``scorer.offset_``).
        beat : Beat, optional
            Needed to adapt: its ``model_input`` (a window fixed in time
            around R) and ``rr`` are read.

        Returns
        -------
        Verdict
        """
        if self.memory is not None:
            if beat is None:
                raise ValueError("an adapting judge needs each beat, not only its score")
            return self._adapted(beat, score, offset)
        threshold = offset
        if self.calibrator is not None:
            threshold = self.calibrator.threshold  # None for the calibration beats themselves
            self.calibrator.update([score])
        if threshold is None:
            return Verdict("learning", None, None, False)
        return Verdict("fixed", threshold, None, score < threshold)

    def _adapted(self, beat, score: float, offset: float) -> Verdict:
        """Learn the patient from the window's beats, then judge by the patient's memory."""
        shape, ratio = self.context.add(beat.model_input, beat.rr)
        if self.memory.ready:
            distance = self.memory.distance(shape[None], np.array([ratio]))
            self.memory.absorb(shape[None], distance)
            self._unsaved += 1
            return Verdict("adapted", None, float(distance[0]), bool(distance[0] > 1))
        self.memory.learn(shape[None], np.array([ratio]), np.array([score >= offset]), np.array([score]))
        if np.isfinite(beat.rr) and beat.rr > 0:
            self._learnt_s += min(beat.rr, MAX_RR_S)
        if self._learnt_s >= self.adapt_s:
            try:
                self.memory.close()
            except ValueError:  # too few beats yet: keep learning
                pass
        return Verdict("learning", None, None, False)
