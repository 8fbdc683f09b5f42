"""The per-beat decision of a stream: which threshold a beat is judged by, and whether it is flagged.

One definition for every path that flags beats: the live :class:`~ecgedge.firmware_bridge.hub.Hub`
and the offline path (:mod:`ecgedge.firmware_bridge.offline`, which ``ecgedge scan`` runs) both
keep one :class:`BeatJudge` per stream and feed it the stream's scores in order.
"""

from __future__ import annotations

from ecgedge.calibration import PatientCalibrator


class BeatJudge:
    """Judge one stream's beat scores, in stream order.

    Parameters
    ----------
    calibration_beats : int or None, default=None
        When set, the stream's threshold is learnt from its first this many
        beats (:class:`ecgedge.calibration.PatientCalibrator`); those beats
        are judged by no threshold (``None``, never flagged). Else every beat
        is judged by the model's threshold (``offset``).

    Examples
    --------
    >>> judge = BeatJudge()
    >>> judge.judge(-0.5, offset=-0.2)
    (-0.2, True)
    >>> learning = BeatJudge(calibration_beats=2)
    >>> learning.judge(-0.1, offset=-0.2)
    (None, False)
    """

    def __init__(self, calibration_beats: int | None = None) -> None:
        self.calibrator = PatientCalibrator(calibration_beats) if calibration_beats else None

    @property
    def learning(self) -> bool:
        """Whether the stream's threshold is still being learnt."""
        return self.calibrator is not None and not self.calibrator.ready

    def judge(self, score: float, offset: float) -> tuple[float | None, bool]:
        """Decide one beat (the next in stream order).

        Parameters
        ----------
        score : float
            The beat's score (higher is more normal).
        offset : float
            The model's threshold (``scorer.offset_``).

        Returns
        -------
        threshold : float or None
            The threshold the beat was compared with; None while learning.
        anomaly : bool
            ``score < threshold``; never while learning.
        """
        threshold = offset
        if self.calibrator is not None:
            threshold = self.calibrator.threshold  # None for the calibration beats themselves
            self.calibrator.update([score])
        return threshold, threshold is not None and score < threshold
