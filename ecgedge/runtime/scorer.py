"""The one scoring interface every backend implements."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from ecgedge._closing import Closing
from ecgedge.beatformat import BeatFormat
from ecgedge.runtime.bundle import Bundle


def check_beats(beats, length: int) -> np.ndarray:
    """Validate beats and return them as a C-contiguous float32 array.

    Parameters
    ----------
    beats : array-like of shape (n_beats, length)
        One beat per row.
    length : int
        Samples per beat the model expects.

    Returns
    -------
    ndarray of shape (n_beats, length), float32

    Raises
    ------
    ValueError
        When beats are not a non-empty 2-D numeric array of the right length
        with finite values.
    """
    try:
        array = np.asarray(beats, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"beats must be numeric, got {type(beats).__name__}: {err}") from err
    if array.ndim != 2:
        hint = " (one beat? pass beats.reshape(1, -1))" if array.ndim == 1 else ""
        raise ValueError(f"beats must be 2-D (n_beats, {length}), got shape {array.shape}{hint}")
    if array.shape[0] == 0:
        raise ValueError("beats is empty: need at least one beat")
    if array.shape[1] != length:
        raise ValueError(f"each beat must have {length} samples (the model's beat length), got {array.shape[1]}")
    if not np.isfinite(array).all():
        raise ValueError("beats contain NaN or infinite values")
    return np.ascontiguousarray(array, dtype=np.float32)


class Scorer(Closing, ABC):
    """Scores beats with one exported model of a bundle, with the estimator's meaning.

    ``score_samples``, ``decision_function`` and ``predict`` are those of
    :class:`~ecgedge.LSTMAutoencoderDetector` (higher score is more normal;
    ``decision_function = score_samples - offset_``; +1 normal, -1 anomaly),
    computed by the backend's graph or engine, which outputs scores only.
    ``offset_`` starts as the bundle's threshold, the one number in its
    manifest; per-stream state (patient calibration) overrides it at run time
    without touching the scorer. Scorers are context managers.

    Parameters
    ----------
    bundle : Bundle
        The verified bundle the model comes from.
    precision : {"fp32", "int8", "fp16"}
        Which exported model scores.
    """

    #: Backend name, as passed to :func:`ecgedge.runtime.load_scorer`.
    backend: str = ""

    def __init__(self, bundle: Bundle, precision: str) -> None:
        self.bundle = bundle
        self.precision = precision
        self.beat_format: BeatFormat = bundle.beat_format
        self._offset = bundle.threshold

    @property
    def offset_(self) -> float:
        """Threshold on the score: beats scoring below it are anomalies."""
        return self._offset

    @offset_.setter
    def offset_(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"offset_ must be finite, got {value}")
        self._offset = value

    @abstractmethod
    def _score(self, beats: np.ndarray) -> np.ndarray:
        """Scores (n_beats,) of validated float32 beats (n_beats, length)."""

    def score_samples(self, beats) -> np.ndarray:
        """Normality of each beat (higher is more normal), as the detector's ``score_samples``.

        Parameters
        ----------
        beats : array-like of shape (n_beats, beat_format.length)

        Returns
        -------
        ndarray of shape (n_beats,), float64
        """
        return np.asarray(self._score(check_beats(beats, self.beat_format.length)), dtype=np.float64)

    def decision_function(self, beats) -> np.ndarray:
        """``score_samples(beats) - offset_``: negative for anomalies.

        Parameters
        ----------
        beats : array-like of shape (n_beats, beat_format.length)

        Returns
        -------
        ndarray of shape (n_beats,), float64
        """
        return self.score_samples(beats) - self._offset

    def predict(self, beats) -> np.ndarray:
        """Label beats +1 (normal) or -1 (anomaly) against :attr:`offset_`.

        Parameters
        ----------
        beats : array-like of shape (n_beats, beat_format.length)

        Returns
        -------
        ndarray of shape (n_beats,), int
        """
        return np.where(self.decision_function(beats) < 0, -1, 1)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(bundle={str(self.bundle.path)!r}, precision={self.precision!r}, "
            f"offset_={self._offset:.6g})"
        )
