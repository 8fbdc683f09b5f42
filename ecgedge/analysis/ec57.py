"""Reference annotations in the terms of ANSI/AAMI EC57: beat classes, matching beats, episodes.

One definition for every path that compares the analysis with a reference: ``ecgedge evaluate``
(:mod:`ecgedge.arrhythmia`, :mod:`ecgedge.evaluation`), ``ecgedge scan`` against a recording's
annotations, ``ecgedge demo``, the annotated beats of :func:`ecgedge.datasets.load_annotated_beats`.
"""

from __future__ import annotations

import numpy as np

#: ANSI/AAMI EC57 beat classes and the MIT-BIH annotation symbols each one gathers (paced beats are Q).
AAMI_CLASSES = {"N": "NLRej", "SVEB": "AaJS", "VEB": "VE", "F": "F", "Q": "/fQ"}
#: Largest distance of a detected beat from its reference beat (ANSI/AAMI EC57), seconds.
MATCH_S = 0.15
_CLASS_OF = {symbol: name for name, symbols in AAMI_CLASSES.items() for symbol in symbols}


def aami_class(symbols) -> np.ndarray:
    """The AAMI EC57 class (``"N"``, ``"SVEB"``, ``"VEB"``, ``"F"``, ``"Q"``) of each beat symbol.

    Beat symbols outside the five classes (``B``, ``r``, ``n``, ``?``) count
    as ``"Q"`` (unclassifiable).

    Parameters
    ----------
    symbols : array-like of str

    Returns
    -------
    ndarray of str, same shape

    Examples
    --------
    >>> aami_class(["N", "V", "A", "/", "?", "B"])
    array(['N', 'VEB', 'SVEB', 'Q', 'Q', 'Q'], dtype='<U4')
    """
    symbols = np.asarray(symbols)
    return np.array([_CLASS_OF.get(s, "Q") for s in symbols.ravel()], dtype="<U4").reshape(symbols.shape)


def nearest_reference(samples: np.ndarray, reference: np.ndarray, window: int) -> np.ndarray:
    """Index of the reference beat nearest each detected beat, or -1 when none is within ``window`` samples.

    Parameters
    ----------
    samples : ndarray of shape (n,), int
        Detected R positions (sample indices).
    reference : ndarray of shape (m,), int, sorted
        Reference beat positions.
    window : int
        Largest distance (samples) of a match; EC57 uses :data:`MATCH_S` (``round(MATCH_S * fs)``).

    Returns
    -------
    ndarray of shape (n,), int64

    Examples
    --------
    >>> nearest_reference(np.array([10, 100, 205]), np.array([12, 200]), window=10)
    array([ 0, -1,  1])
    """
    samples, reference = np.asarray(samples, dtype=np.int64), np.asarray(reference, dtype=np.int64)
    if not reference.size:
        return np.full(samples.size, -1, dtype=np.int64)
    after = np.clip(np.searchsorted(reference, samples), 0, reference.size - 1)
    before = np.clip(after - 1, 0, reference.size - 1)
    nearest = np.where(np.abs(samples - reference[before]) <= np.abs(reference[after] - samples), before, after)
    return np.where(np.abs(reference[nearest] - samples) <= window, nearest, -1)


def episodes(flags: np.ndarray, groups: np.ndarray | None = None) -> list[tuple[int, int]]:
    """The first and last index of each run of consecutive set flags (an episode, such as AF's).

    Parameters
    ----------
    flags : ndarray of shape (n,), bool
        Whether each beat, in stream order, is in the state (AF, say).
    groups : ndarray of shape (n,), optional
        Each beat's recording: a run ends where the recording changes.

    Returns
    -------
    list of (int, int)
        Inclusive index ranges, in order.

    Examples
    --------
    >>> episodes(np.array([0, 1, 1, 0, 1, 1], bool), np.array(["a", "a", "a", "a", "a", "b"]))
    [(1, 2), (4, 4), (5, 5)]
    """
    flags = np.asarray(flags, dtype=bool)
    same = np.ones(max(flags.size - 1, 0), dtype=bool) if groups is None else groups[1:] == groups[:-1]
    goes_on = flags[1:] & flags[:-1] & same  # the next beat continues this one's run
    starts = np.flatnonzero(flags & ~np.r_[False, goes_on])
    ends = np.flatnonzero(flags & ~np.r_[goes_on, False])
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]  # a start and an end a run
