"""Patient adaptation on the device: a memory of the patient's own normal beats, numpy only.

A population model knows normal beats of many patients; the patient at the bedside has their own.
During a learning window the memory keeps the beats the population model accepts (so a stream that
starts in bigeminy does not learn its ventricular beats as normal), then judges every later beat by
its distance to them. The memory is data, not graph weights: it works the same with every scoring
backend and is saved and restored with :meth:`PatientMemory.state` / :meth:`PatientMemory.from_state`.
"""

from __future__ import annotations

from collections import deque

import numpy as np

#: Weight of the two RR ratios against the morphology samples (mV) in :func:`beat_features`.
RR_WEIGHT = 3.0


def beat_features(windows: np.ndarray, rr_ratios: np.ndarray) -> np.ndarray:
    """What the memory compares: the beat window (mV) about its median, and weighted RR ratios.

    Parameters
    ----------
    windows : ndarray of shape (n_beats, n_samples)
        Beats cut in a window fixed in time around R (mV, amplitude kept).
    rr_ratios : ndarray of shape (n_beats, n_ratios)
        RR intervals around each beat over the patient's recent RR (see :class:`RhythmContext`).

    Returns
    -------
    ndarray of shape (n_beats, n_samples + n_ratios), float32
    """
    windows = np.asarray(windows, dtype=np.float64)
    rr_ratios = np.asarray(rr_ratios, dtype=np.float64).reshape(len(windows), -1)
    morphology = windows - np.median(windows, axis=1, keepdims=True)
    return np.hstack([morphology, RR_WEIGHT * rr_ratios]).astype(np.float32)


class RhythmContext:
    """A stream's recent rhythm: each RR interval over the mean of the last ``n_intervals``.

    Parameters
    ----------
    n_intervals : int, default=10
        RR intervals averaged (the new one included).

    Examples
    --------
    >>> rhythm = RhythmContext(n_intervals=3)
    >>> [round(rhythm.ratio(rr), 3) for rr in (0.8, 0.8, 0.5, 0.8)]
    [1.0, 1.0, 0.714, 1.143]
    """

    def __init__(self, n_intervals: int = 10) -> None:
        self._recent: deque[float] = deque(maxlen=n_intervals)

    @property
    def mean(self) -> float:
        """Mean of the recent RR intervals (s); NaN before the first."""
        return float(np.mean(self._recent)) if self._recent else float("nan")

    def ratio(self, rr: float) -> float:
        """Add the next RR interval (s) and return it over the recent mean."""
        if not np.isfinite(rr) or rr <= 0:
            raise ValueError(f"an RR interval must be a positive number of seconds, got {rr}")
        self._recent.append(float(rr))
        return float(rr) / self.mean


class PatientMemory:
    """The patient's own normal beats and the threshold learnt from them.

    Feed the learning window's beats to :meth:`learn` with the population
    model's verdict, then call :meth:`close`; from then on :meth:`distance`
    scores beats (lower is more normal) and a beat is abnormal when its
    distance exceeds :attr:`threshold`.

    Parameters
    ----------
    n_neighbors : int, default=3
        Nearest memory beats averaged into a distance.
    quantile : float, default=99.0
        Percentile of the memory beats' leave-one-out distances ...
    factor : float, default=2.0
        ... times which is the threshold.
    min_beats : int, default=20
        Fewest beats a memory needs. When the population model accepted
        fewer, the learning window's more normal half (by population score)
        is kept instead, so a patient unlike the population still gets a memory.
    max_beats : int, default=2048
        Most beats kept (the latest).

    Examples
    --------
    >>> rng = np.random.RandomState(0)
    >>> memory = PatientMemory()
    >>> memory.learn(rng.normal(0, 0.05, (200, 4)), accepted=np.ones(200, bool), scores=np.zeros(200))
    >>> memory.close()
    >>> memory.distance(np.array([[0.0, 0, 0, 0], [1.0, 1, 1, 1]])) > memory.threshold
    array([False,  True])
    """

    def __init__(self, n_neighbors: int = 3, quantile: float = 99.0, factor: float = 2.0, min_beats: int = 20,
                 max_beats: int = 2048) -> None:
        if n_neighbors < 1 or min_beats <= n_neighbors or max_beats < min_beats:
            raise ValueError(f"need 1 <= n_neighbors < min_beats <= max_beats, got {n_neighbors}, {min_beats}, "
                             f"{max_beats}")
        if not 0 < quantile <= 100 or not np.isfinite(factor) or factor <= 0:
            raise ValueError(f"need 0 < quantile <= 100 and a finite factor > 0, got {quantile}, {factor}")
        self.n_neighbors = n_neighbors
        self.quantile = quantile
        self.factor = factor
        self.min_beats = min_beats
        self.max_beats = max_beats
        self._offered: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (features, accepted, scores)
        self.beats_: np.ndarray | None = None
        self.threshold: float | None = None

    @property
    def ready(self) -> bool:
        """Whether learning is closed and beats can be judged."""
        return self.threshold is not None

    def learn(self, features: np.ndarray, accepted: np.ndarray, scores: np.ndarray) -> None:
        """Offer learning-window beats.

        Parameters
        ----------
        features : ndarray of shape (n_beats, n_features)
        accepted : ndarray of shape (n_beats,), bool
            Whether the population model judged each beat normal.
        scores : ndarray of shape (n_beats,)
            The population model's scores (higher is more normal), for the fallback.
        """
        if self.ready:
            raise RuntimeError("learning is closed; reset() for a new patient")
        features = np.atleast_2d(np.asarray(features, dtype=np.float32))
        accepted, scores = np.asarray(accepted, dtype=bool), np.asarray(scores, dtype=np.float64)
        if not len(features) == len(accepted) == len(scores):
            raise ValueError(f"{len(features)} beats, {len(accepted)} verdicts and {len(scores)} scores differ")
        if not np.isfinite(features).all():
            raise ValueError("beat features contain NaN or infinite values")
        self._offered.append((features, accepted, scores))

    def close(self) -> None:
        """End learning: keep the accepted beats (or the fallback) and set the threshold.

        Raises
        ------
        ValueError
            When fewer than ``min_beats`` beats were offered at all.
        """
        n_offered = sum(len(features) for features, _, _ in self._offered)
        if n_offered < self.min_beats:
            raise ValueError(f"a patient memory needs at least {self.min_beats} beats, got {n_offered}")
        features, accepted, scores = (np.concatenate(part) for part in zip(*self._offered))
        if accepted.sum() < self.min_beats:
            accepted = scores >= np.median(scores)
        self.beats_ = features[accepted][-self.max_beats:]
        own = self._distance(self.beats_, leave_one_out=True)
        self.threshold = float(self.factor * np.percentile(own, self.quantile))
        self._offered = []

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mean distance of each beat to its ``n_neighbors`` nearest memory beats (lower is more normal)."""
        if not self.ready:
            raise RuntimeError("the memory is still learning: close() it first")
        return self._distance(np.atleast_2d(np.asarray(features, dtype=np.float32)))

    def _distance(self, features: np.ndarray, leave_one_out: bool = False) -> np.ndarray:
        memory = self.beats_
        squared = (np.sum(features**2, axis=1)[:, None] - 2 * features @ memory.T + np.sum(memory**2, axis=1))
        k = self.n_neighbors + int(leave_one_out)
        nearest = np.partition(np.maximum(squared, 0), k - 1, axis=1)[:, :k]
        nearest = np.sort(nearest, axis=1)[:, int(leave_one_out):]
        return np.sqrt(nearest).mean(axis=1)

    def reset(self) -> None:
        """Forget everything (a new patient)."""
        self.__init__(self.n_neighbors, self.quantile, self.factor, self.min_beats, self.max_beats)

    def state(self) -> dict:
        """What a restarted device needs to resume without relearning (numpy arrays and numbers)."""
        if not self.ready:
            raise RuntimeError("only a closed memory has a state to keep")
        return {"beats": self.beats_, "threshold": self.threshold, "n_neighbors": self.n_neighbors,
                "quantile": self.quantile, "factor": self.factor, "min_beats": self.min_beats,
                "max_beats": self.max_beats}

    @classmethod
    def from_state(cls, state: dict) -> PatientMemory:
        """A memory as :meth:`state` described it."""
        memory = cls(int(state["n_neighbors"]), float(state["quantile"]), float(state["factor"]),
                     int(state["min_beats"]), int(state["max_beats"]))
        memory.beats_ = np.asarray(state["beats"], dtype=np.float32)
        memory.threshold = float(state["threshold"])
        return memory
