"""The population model: an LSTM autoencoder fit on normal beats of many patients.

A bedside device meets patients nobody trained on. Fit on the normal (AAMI N) beats of many
records, cut where the bridge itself finds them and in a window fixed in time (which keeps the
QRS width that marks a ventricular beat), the model knows what normal beats look like across
people; the device then adapts to its own patient (:class:`ecgedge.calibration.PatientMemory`).
The shipped ``population.npz`` is this recipe on the 22 MIT-BIH records of the inter-patient
training set DS1 (de Chazal et al. 2004), bit for bit on one CPU thread (more threads: the same
weights to rounding, about 1e-5)::

    OMP_NUM_THREADS=1 ecgedge train --wfdb mitdb --records "101 106 108 109 112 114 115 116 118 119 122 \\
        124 201 203 205 207 208 209 215 220 223 230" --out population.npz --seed 0 --device cpu
"""

from __future__ import annotations

import numpy as np

from ecgedge.beatformat import BeatFormat
from ecgedge.datasets import AnnotatedBeats

#: The population model's beats: 250 ms before to 400 ms after R, 59 samples (about 90 Hz), R up (MLII).
POPULATION_FORMAT = BeatFormat(length=59, before_r=0.25, after_r=0.40, source_fs=360.0, r_polarity=1, window_unit="s")
# fmt: off
#: The inter-patient training set DS1 of de Chazal et al. (2004): MIT-BIH records, no paced ones.
DS1 = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)
# fmt: on
#: Estimator settings of the population model (beats keep their amplitude: no per-beat standardising).
POPULATION_PARAMS = {"standardize": False, "max_epochs": 30, "beat_format": POPULATION_FORMAT.to_dict()}


def normal_rows(beats: AnnotatedBeats, per_record: int = 300, random_state: int = 0) -> np.ndarray:
    """Indices of up to ``per_record`` N beats of each record, drawn at random (record order kept).

    Parameters
    ----------
    beats : AnnotatedBeats
    per_record : int, default=300
        N beats drawn per record, so no patient outweighs the others.
    random_state : int, default=0

    Returns
    -------
    ndarray of int
    """
    if per_record < 1:
        raise ValueError(f"per_record must be >= 1, got {per_record}")
    rng = np.random.RandomState(random_state)
    drawn = [
        rng.permutation(np.flatnonzero((beats.record == name) & (beats.aami == "N")))[:per_record]
        for name in beats.records
    ]
    rows = np.concatenate(drawn) if drawn else np.empty(0, dtype=int)
    if not rows.size:
        raise ValueError("no N beats to fit a population model on")
    return rows


def fit_population(beats: AnnotatedBeats, *, per_record: int = 300, random_state: int = 0, **params):
    """Fit the population model on the N beats of ``beats`` (see :func:`normal_rows`).

    Parameters
    ----------
    beats : AnnotatedBeats
        Cut in :data:`POPULATION_FORMAT`, best where the bridge finds them
        (``load_annotated_beats(..., positions="bridge")``).
    per_record, random_state
        As :func:`normal_rows`; ``random_state`` also seeds the estimator.
    **params
        Estimator settings over :data:`POPULATION_PARAMS` (``device``, ``verbose``, ...).

    Returns
    -------
    LSTMAutoencoderDetector
    """
    from ecgedge.detector import LSTMAutoencoderDetector

    detector = LSTMAutoencoderDetector(**{**POPULATION_PARAMS, "random_state": random_state, **params})
    return detector.fit(beats.X[normal_rows(beats, per_record, random_state)])
