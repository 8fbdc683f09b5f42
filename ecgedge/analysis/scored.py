"""A beat with the model's score and the judge's verdict: what the analysis of a stream gives for each beat."""

from __future__ import annotations

from dataclasses import dataclass

from ecgedge.analysis.beats import Beat
from ecgedge.analysis.judge import Verdict


@dataclass
class ScoredBeat:
    """A beat with its score and decision.

    Attributes
    ----------
    beat : Beat
    score : float
        The model's score; higher is more normal.
    verdict : Verdict
        How the beat was judged (:class:`~ecgedge.analysis.judge.Verdict`).
    """

    beat: Beat
    score: float
    verdict: Verdict

    @property
    def threshold(self) -> float | None:
        """The score threshold the beat was compared with; None while learning or when adapted."""
        return self.verdict.threshold

    @property
    def anomaly(self) -> bool:
        """Whether the beat was flagged (never while learning)."""
        return self.verdict.anomaly

    @property
    def learning(self) -> bool:
        """Whether the beat came while its stream was learning its patient."""
        return self.verdict.mode == "learning"
