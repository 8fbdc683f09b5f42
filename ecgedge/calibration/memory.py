"""Patient adaptation on the device: a memory of the patient's own normal beats, numpy only.

A population model knows normal beats of many patients; the patient at the bedside has their own.
During a learning window the memory keeps the beats the population model accepts (so a stream that
starts in bigeminy does not learn its ventricular beats as normal), then judges every later beat by
two questions: is its shape far from the patient's normal beats, and did it come early for the
patient's rhythm? Clearly normal beats keep joining the memory, so it follows slow changes of the
patient. The memory is data, not graph weights: it works the same with every scoring backend and is
saved and restored with :meth:`PatientMemory.state` / :meth:`PatientMemory.from_state`.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class BeatContext:
    """A stream's recent rhythm and amplitude, which put each beat in its patient's own terms.

    The shape of a beat is taken about its median and divided by the median
    peak-to-peak amplitude of the stream's last ``n_amplitudes`` beats (an
    automatic gain control: an electrode moved, or a new amplifier gain,
    changes every beat alike and is followed within a few beats, while one
    beat larger than its neighbours stays larger). Its rhythm is the RR
    interval before it over the median of the ``n_intervals`` intervals before
    that (a premature beat has a ratio well below 1).

    Parameters
    ----------
    n_intervals : int, default=8
    n_amplitudes : int, default=32

    Examples
    --------
    >>> context = BeatContext(n_intervals=3)
    >>> window = np.array([0.0, 1.0, 0.0])
    >>> [round(context.add(window, rr)[1], 3) for rr in (0.8, 0.8, 0.5, 0.8)]
    [1.0, 1.0, 0.625, 1.0]
    """

    def __init__(self, n_intervals: int = 8, n_amplitudes: int = 32) -> None:
        self.n_intervals = n_intervals
        self._intervals: deque[float] = deque(maxlen=n_intervals)
        self._amplitudes: deque[float] = deque(maxlen=n_amplitudes)
        self._held = 0

    def add(self, window: np.ndarray, rr: float, keep: bool = True) -> tuple[np.ndarray, float]:
        """Put the next beat of the stream in context.

        Parameters
        ----------
        window : ndarray of shape (n_samples,)
            The beat, cut in a window fixed in time around R (mV).
        rr : float
            Seconds since the previous beat (NaN or 0 when unknown: the ratio is then 1).
        keep : bool, default=True
            Keep ``rr`` among the recent intervals now; False: the caller calls :meth:`keep`.

        Returns
        -------
        shape : ndarray of shape (n_samples,), float32
            The beat about its median over the stream's recent amplitude.
        rr_ratio : float
            ``rr`` over the median of the recent intervals.
        """
        window = np.asarray(window, dtype=np.float64)
        shape = window - np.median(window)
        self._amplitudes.append(float(np.ptp(shape)))
        scale = max(float(np.median(self._amplitudes)), 1e-6)
        ratio = 1.0
        if np.isfinite(rr) and rr > 0 and self._intervals:
            ratio = rr / float(np.median(self._intervals))
        if keep:
            self.keep(rr)
        return (shape / scale).astype(np.float32), float(ratio)

    def keep(self, rr: float, normal_to_normal: bool = True) -> None:
        """Keep a beat's interval among the recent ones; others only after ``n_intervals`` held back in a row."""
        if not (np.isfinite(rr) and rr > 0):
            return
        if not normal_to_normal and self._held < self.n_intervals:
            self._held += 1
            return
        self._held = 0
        self._intervals.append(float(rr))


class PatientMemory:
    """The patient's own normal beats and the limits learnt from them.

    Feed the learning window's beats to :meth:`learn` with the population
    model's verdict, then :meth:`close` it. From then on :meth:`distance`
    judges beats: the larger of the beat's shape distance to its
    ``n_neighbors`` nearest memory beats over the shape limit, and its
    prematurity over the rhythm limit. Above 1 a beat is abnormal.
    :meth:`absorb` lets clearly normal beats join the memory.

    Parameters
    ----------
    n_neighbors : int, default=3
        Nearest memory beats averaged into a shape distance.
    quantile : float, default=99.0
        Percentile of the memory beats' leave-one-out shape distances ...
    factor : float, default=2.0
        ... times which is the shape limit.
    premature : float, default=0.85
        A beat whose RR ratio is below this is premature, unless the patient's
        normal beats come as early (then 95 % of their 1st percentile: atrial
        fibrillation is irregular and must not alarm on every beat).
    absorb_below : float, default=0.5
        Beats judged below this distance join the memory.
    min_beats : int, default=20
        Fewest beats a memory needs. When the population model accepted
        fewer than ``min_beats`` or a quarter of the learning window, the
        window's more normal half (by population score) is kept instead, so a
        patient unlike the population still gets a memory.
    max_beats : int, default=2048
        Most beats kept (the latest).
    columns : (int, int) or None, default=None
        Compare shapes on these columns only (``start``, ``stop``): the QRS complex, so the shape
        distance judges the ventricular complex and not the P and T waves, which change with
        the rate and the atrial rhythm (:data:`ecgedge.analysis.judge.QRS_SPAN_S`). None: the
        whole window.

    Attributes
    ----------
    shape_limit, rhythm_limit : float or None
        The limits :meth:`close` set (None while learning).
    accepted_share : float
        The share of the learning window's beats the population model accepted: how far its verdict
        can be trusted for this patient (nan until :meth:`close`, and for memories saved before it).

    Examples
    --------
    >>> rng = np.random.RandomState(0)
    >>> memory = PatientMemory()
    >>> memory.learn(rng.normal(0, 0.05, (200, 4)), np.ones(200), accepted=np.ones(200, bool), scores=np.zeros(200))
    >>> memory.close()
    >>> memory.distance(np.array([[0.0, 0, 0, 0], [1.0, 1, 1, 1], [0.0, 0, 0, 0]]), np.array([1.0, 1.0, 0.6])) > 1
    array([False,  True,  True])
    """

    def __init__(
        self,
        n_neighbors: int = 3,
        quantile: float = 99.0,
        factor: float = 2.0,
        premature: float = 0.85,
        absorb_below: float = 0.5,
        min_beats: int = 20,
        max_beats: int = 2048,
        columns: tuple[int, int] | None = None,
    ) -> None:
        if n_neighbors < 1 or min_beats <= n_neighbors or max_beats < min_beats:
            raise ValueError(
                f"need 1 <= n_neighbors < min_beats <= max_beats, got {n_neighbors}, {min_beats}, {max_beats}"
            )
        if not 0 < quantile <= 100 or not np.isfinite(factor) or factor <= 0:
            raise ValueError(f"need 0 < quantile <= 100 and a finite factor > 0, got {quantile}, {factor}")
        if not 0 < premature < 1 or not 0 <= absorb_below <= 1:
            raise ValueError(f"need 0 < premature < 1 and 0 <= absorb_below <= 1, got {premature}, {absorb_below}")
        self.n_neighbors = n_neighbors
        self.quantile = quantile
        self.factor = factor
        self.premature = premature
        self.absorb_below = absorb_below
        if columns is not None and not 0 <= columns[0] < columns[1]:
            raise ValueError(f"columns must be (start, stop) with 0 <= start < stop, got {columns}")
        self.min_beats = min_beats
        self.max_beats = max_beats
        self.columns = None if columns is None else (int(columns[0]), int(columns[1]))
        self._forget()

    def _forget(self) -> None:
        """Start with no beats and no limits (a new memory, or a new patient)."""
        # (shapes, rr ratios, accepted, scores) of each learn() call
        self._offered: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._ring: np.ndarray | None = None  # max_beats rows, the first _count in use, _next written next
        self._count = self._next = 0
        self._provisional: tuple[float, int] | None = None  # (shape limit, accepted beats) while learning
        self.shape_limit: float | None = None
        self.rhythm_limit: float | None = None
        self.accepted_share = float("nan")  # of the learning window, by the population model (nan: unknown)

    @property
    def ready(self) -> bool:
        """Whether learning is closed and beats can be judged."""
        return self.shape_limit is not None

    def learn(self, shapes: np.ndarray, rr_ratios: np.ndarray, accepted: np.ndarray, scores: np.ndarray) -> None:
        """Offer learning-window beats.

        Parameters
        ----------
        shapes : ndarray of shape (n_beats, n_samples)
            Beat shapes (:meth:`BeatContext.add`).
        rr_ratios : ndarray of shape (n_beats,)
        accepted : ndarray of shape (n_beats,), bool
            Whether the population model judged each beat normal.
        scores : ndarray of shape (n_beats,)
            The population model's scores (higher is more normal), for the fallback.
        """
        if self.ready:
            raise RuntimeError("learning is closed; reset() for a new patient")
        shapes = np.atleast_2d(np.asarray(shapes, dtype=np.float32))
        ratios, accepted = (
            np.atleast_1d(np.asarray(rr_ratios, dtype=np.float64)),
            np.atleast_1d(np.asarray(accepted, dtype=bool)),
        )
        scores = np.atleast_1d(np.asarray(scores, dtype=np.float64))
        if not len(shapes) == len(ratios) == len(accepted) == len(scores):
            raise ValueError(
                f"{len(shapes)} beats, {len(ratios)} RR ratios, {len(accepted)} verdicts and "
                f"{len(scores)} scores differ"
            )
        if not (np.isfinite(shapes).all() and np.isfinite(ratios).all()):
            raise ValueError("beat shapes or RR ratios contain NaN or infinite values")
        self._offered.append((shapes, ratios, accepted, scores))

    def looks_normal(self, shape: np.ndarray) -> bool | None:
        """While learning: whether a shape is as near the beats accepted so far as they are to each other.

        The rule :meth:`close` sets the shape limit by, applied to the accepted beats offered so
        far (the limit is refreshed each time their number grows by a quarter). None while fewer
        than ``min_beats`` were accepted.
        """
        parts = [part[0][part[2]] for part in self._offered]
        accepted = np.concatenate(parts) if parts else np.empty((0, 0), np.float32)
        if len(accepted) < self.min_beats:
            return None
        if self._provisional is None or len(accepted) >= 1.25 * self._provisional[1]:
            own = self._nearest(accepted, accepted, leave_one_out=True)
            self._provisional = (float(self.factor * np.percentile(own, self.quantile)), len(accepted))
        distance = self._nearest(np.atleast_2d(np.asarray(shape, dtype=np.float32)), accepted)[0]
        return bool(distance <= self._provisional[0])

    def close(self) -> None:
        """End learning: keep the accepted beats (or the fallback) and set the limits.

        Raises
        ------
        ValueError
            When fewer than ``min_beats`` beats were offered at all.
        """
        n_offered = sum(len(part[0]) for part in self._offered)
        if n_offered < self.min_beats:
            raise ValueError(f"a patient memory needs at least {self.min_beats} beats, got {n_offered}")
        shapes, ratios, accepted, scores = (np.concatenate(part) for part in zip(*self._offered, strict=True))
        self.accepted_share = float(accepted.mean())
        if accepted.sum() < max(self.min_beats, len(accepted) / 4):
            accepted = scores >= np.median(scores)
        self._keep(shapes[accepted])
        own = self._shape_distance(self._beats(), leave_one_out=True)
        self.shape_limit = float(self.factor * np.percentile(own, self.quantile))
        self.rhythm_limit = float(min(0.95 * np.percentile(ratios[accepted], 1), self.premature))
        self._offered = []

    def distance(self, shapes: np.ndarray, rr_ratios: np.ndarray, own_lengths=None) -> np.ndarray:
        """How far each beat is from the patient's normal beats, in limits (above 1: abnormal).

        The larger of the two parts of :meth:`distances`.
        """
        return np.maximum(*self.distances(shapes, rr_ratios, own_lengths))

    def distances(self, shapes: np.ndarray, rr_ratios: np.ndarray, own_lengths=None) -> tuple[np.ndarray, np.ndarray]:
        """Each beat's shape distance and prematurity, both in limits (above 1: abnormal).

        Parameters
        ----------
        shapes : ndarray of shape (n_beats, n_samples)
        rr_ratios : ndarray of shape (n_beats,)
        own_lengths : array-like of int of shape (n_beats,), optional
            Compare only each shape's first this many samples (the part before the next beat's
            onset); default: all.

        Returns
        -------
        shape : ndarray of shape (n_beats,)
        timing : ndarray of shape (n_beats,)
        """
        shape_limit, rhythm_limit = self.limits()
        shapes = np.atleast_2d(np.asarray(shapes, dtype=np.float32))
        early = (1 - np.atleast_1d(np.asarray(rr_ratios, dtype=np.float64))) / (1 - rhythm_limit)
        return self._shape_distance(shapes, own_lengths=own_lengths) / shape_limit, early

    def spread(self, shapes: np.ndarray) -> np.ndarray:
        """Each shape's distance to its ``n_neighbors`` nearest others among ``shapes``, in shape limits.

        At most 1 for most of them: the shapes are one complex, as alike as the memory's beats.
        """
        shape_limit, _ = self.limits()
        shapes = np.atleast_2d(np.asarray(shapes, dtype=np.float32))
        return self._nearest(shapes, shapes, leave_one_out=True) / shape_limit

    def absorb(self, shapes: np.ndarray, distances: np.ndarray) -> None:
        """Let the beats judged clearly normal (``distance < absorb_below``) join the memory (the oldest leave)."""
        joining = np.atleast_2d(np.asarray(shapes, dtype=np.float32))[np.atleast_1d(distances) < self.absorb_below]
        if not len(joining):
            return
        if self._ring is None:
            raise RuntimeError("the memory is still learning: close() it first")
        for shape in joining:
            self._ring[self._next] = shape
            self._next = (self._next + 1) % self.max_beats
            self._count = min(self._count + 1, self.max_beats)

    @property
    def beats_(self) -> np.ndarray | None:
        """The memory's beats, shape (n_beats, n_samples); None while learning."""
        return None if self._ring is None else self._beats()

    def _beats(self) -> np.ndarray:
        """The memory's beats, once learning is closed."""
        if self._ring is None:
            raise RuntimeError("the memory is still learning: close() it first")
        return self._ring[: self._count]

    def limits(self) -> tuple[float, float]:
        """The shape and rhythm limits, once learning is closed."""
        if self.shape_limit is None or self.rhythm_limit is None:
            raise RuntimeError("the memory is still learning: close() it first")
        return self.shape_limit, self.rhythm_limit

    def _keep(self, beats: np.ndarray) -> None:
        """Start the memory from ``beats`` (the latest ``max_beats`` of them)."""
        beats = np.asarray(beats, dtype=np.float32)[-self.max_beats :]
        self._ring = np.empty((self.max_beats, beats.shape[1]), dtype=np.float32)
        self._ring[: len(beats)] = beats
        self._count, self._next = len(beats), len(beats) % self.max_beats

    def _shape_distance(self, shapes: np.ndarray, leave_one_out: bool = False, own_lengths=None) -> np.ndarray:
        return self._nearest(shapes, self._beats(), leave_one_out, own_lengths)

    def _nearest(
        self, shapes: np.ndarray, memory: np.ndarray, leave_one_out: bool = False, own_lengths=None
    ) -> np.ndarray:
        """Mean distance of each shape to its ``n_neighbors`` nearest rows of ``memory`` (over ``columns``)."""
        start, stop = self.columns or (0, shapes.shape[1])
        shapes, memory = shapes[:, start:stop], memory[:, start:stop]
        if own_lengths is None:
            squared = np.sum(shapes**2, axis=1)[:, None] - 2 * shapes @ memory.T + np.sum(memory**2, axis=1)
        else:  # each beat's own part only: masked sums of squares
            own = np.clip(np.atleast_1d(np.asarray(own_lengths)), start + 1, stop)
            mask = (np.arange(start, stop) < own[:, None]).astype(np.float32)
            squared = np.sum(mask * shapes**2, axis=1)[:, None] - 2 * (mask * shapes) @ memory.T + mask @ (memory**2).T
        k = min(self.n_neighbors + int(leave_one_out), len(memory))
        nearest = np.sort(np.partition(np.maximum(squared, 0), k - 1, axis=1)[:, :k], axis=1)[:, int(leave_one_out) :]
        return np.sqrt(nearest).mean(axis=1)

    def reset(self) -> None:
        """Forget everything (a new patient)."""
        self._forget()

    def _settings(self) -> dict:
        return {
            "n_neighbors": self.n_neighbors,
            "quantile": self.quantile,
            "factor": self.factor,
            "premature": self.premature,
            "absorb_below": self.absorb_below,
            "min_beats": self.min_beats,
            "max_beats": self.max_beats,
            "columns": self.columns,
        }

    def state(self) -> dict:
        """What a restarted device needs to resume without relearning (numpy arrays and numbers)."""
        if not self.ready:
            raise RuntimeError("only a closed memory has a state to keep")
        return {
            "beats": self.beats_,
            "shape_limit": self.shape_limit,
            "rhythm_limit": self.rhythm_limit,
            "accepted_share": self.accepted_share,
            **self._settings(),
            "columns": np.asarray(self.columns or (), dtype=np.int64),
        }

    @classmethod
    def from_state(cls, state: dict) -> PatientMemory:
        """A memory as :meth:`state` described it."""
        saved = state.get("columns")  # absent from memories saved before it: the whole window
        columns = None
        if saved is not None and np.size(saved) > 0:
            start_stop = np.ravel(saved)
            columns = (int(start_stop[0]), int(start_stop[1]))
        memory = cls(
            n_neighbors=int(state["n_neighbors"]),
            quantile=float(state["quantile"]),
            factor=float(state["factor"]),
            premature=float(state["premature"]),
            absorb_below=float(state["absorb_below"]),
            min_beats=int(state["min_beats"]),
            max_beats=int(state["max_beats"]),
            columns=columns,
        )
        memory._keep(np.atleast_2d(np.asarray(state["beats"], dtype=np.float32)))
        memory.shape_limit = float(state["shape_limit"])
        memory.rhythm_limit = float(state["rhythm_limit"])
        memory.accepted_share = float(state.get("accepted_share", np.nan))  # absent from memories saved before it
        return memory
