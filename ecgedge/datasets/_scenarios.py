"""What a record lacks, made from it: an AV block, a rate step, a VT, fusion beats, by documented edits.

A monitor must hold when the rhythm changes after it learnt the patient. The shared MIT-BIH records
show few such changes, so these functions make them from a record's own sinus beats, as the heart
would: the atria keep their pace and the conduction or the diastole changes, while every QRS-T
complex that remains is the patient's own. Edits that move beats return the edited signal and
where the reference beats now lie, so what a detector finds can still be matched.
"""

from __future__ import annotations

import numpy as np

#: A QRS complex starts this long (s) before its R peak; the P wave lies before that.
QRS_ONSET_S = 0.06
#: The T wave has ended this long (s) after R at sinus rates (QT about 350-400 ms from the QRS onset).
T_END_S = 0.40
#: The P wave and PR segment take this long (s) before the next R: diastole ends there.
P_WAVE_S = 0.22


def block_conduction(
    signal: np.ndarray, fs: float, r_samples: np.ndarray, start: float, stop: float, every: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """A 2:1 (``every=2``) AV block from ``start`` to ``stop`` (s): every second QRS-T is not conducted.

    The signal from the QRS onset to the end of the T wave of every ``every``-th beat in the
    stretch is replaced by a straight line between its ends; the P wave before it stays, as in an
    AV block (the atria keep their pace, the ventricles miss the beat).

    Parameters
    ----------
    signal, fs, r_samples
        The lead (mV), its sample rate (Hz) and its reference R peaks (increasing), as
        :func:`change_rate`'s.
    start, stop : float
        The block's stretch (s).
    every : int, default=2
        One beat in ``every`` is conducted.

    Returns
    -------
    signal : ndarray of shape (n_samples,)
        A copy, edited.
    kept : ndarray of bool, shape like ``r_samples``
        Which reference beats remain.
    """
    if every < 2:
        raise ValueError(f"every must be >= 2, got {every}")
    out = np.array(signal, dtype=float)
    r_samples = np.asarray(r_samples)
    kept = np.ones(r_samples.size, dtype=bool)
    inside = np.flatnonzero((r_samples >= start * fs) & (r_samples < stop * fs))
    for i in inside[1::every]:
        lo, hi = r_samples[i] - round(QRS_ONSET_S * fs), min(r_samples[i] + round(T_END_S * fs), out.size - 1)
        out[lo:hi] = np.linspace(out[lo], out[hi], hi - lo)
        kept[i] = False
    return out, kept


def change_rate(
    signal: np.ndarray, fs: float, r_samples: np.ndarray, start: float, factor: float = 0.75, stop: float = np.inf
) -> tuple[np.ndarray, np.ndarray]:
    """A rate step at ``start`` (s): every RR interval up to ``stop`` times ``factor``, by its diastole alone.

    The heart changes its rate by shortening or lengthening diastole, the stretch between the end
    of the T wave and the next P wave; the QRS complexes keep their width. So each interval after
    ``start`` (and before ``stop``, where the rate steps back) loses ``(1 - factor)`` of its length
    from the samples just before the next P wave (``factor < 1``, as far as the diastole allows:
    after :data:`T_END_S`), or gains it there as a flat line (``factor > 1``).

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
    fs : float
        Sample rate (Hz).
    r_samples : ndarray of int
        The reference R peaks, increasing.
    start : float
        Seconds; the first interval changed is the first that starts after it.
    factor : float, default=0.75
        The new RR interval over the old one (0.75: the rate rises by a third).
    stop : float, default=inf
        Seconds; intervals that start after it keep their length (the original signal's time).

    Returns
    -------
    signal : ndarray
        The edited signal (shorter or longer).
    r_samples : ndarray of int
        Where the reference beats now lie.
    """
    if not 0.5 <= factor <= 3.0:
        raise ValueError(f"factor must be in [0.5, 3], got {factor}")
    r_samples = np.asarray(r_samples, dtype=np.int64)
    pieces, shift, last = [], np.zeros(r_samples.size, dtype=np.int64), 0
    for i in np.flatnonzero((r_samples[:-1] >= start * fs) & (r_samples[:-1] < stop * fs)):
        rr = r_samples[i + 1] - r_samples[i]
        cut_end = r_samples[i + 1] - round(P_WAVE_S * fs)
        if factor < 1:
            k = min(round((1 - factor) * rr), cut_end - (r_samples[i] + round(T_END_S * fs)))
            if k <= 0:
                continue
            pieces.append(signal[last : cut_end - k])
        else:
            k = -round((factor - 1) * rr)
            pieces += [signal[last:cut_end], np.full(-k, signal[cut_end])]
        last = cut_end
        shift[i + 1 :] -= k
    pieces.append(signal[last:])
    return np.concatenate(pieces).astype(float), r_samples + shift


def insert_run(
    signal: np.ndarray, fs: float, template_r: int, at: int, beats: int, rr_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """A run of ``beats`` copies of one beat at ``rr_s`` intervals, inserted into the signal at sample ``at``.

    A ventricular tachycardia made from the patient's own ventricular beat: the signal from half an
    interval before the beat's R peak (``template_r``) to half an interval after it, repeated; at
    150 bpm (``rr_s=0.4``) each complex runs into the next as in a real VT. Insert it in diastole
    (after a T wave, before a P wave) so that it starts and ends on the baseline.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
    fs : float
    template_r : int
        R sample of the beat to repeat.
    at : int
        Where the run goes in.
    beats : int
    rr_s : float
        Seconds between the run's beats.

    Returns
    -------
    signal : ndarray
        ``beats * round(rr_s * fs)`` samples longer; everything after ``at`` moves by that much.
    r_samples : ndarray of int
        The run's R peaks.
    """
    half = round(rr_s * fs / 2)
    complex_ = np.asarray(signal[template_r - half : template_r + half], dtype=float)
    complex_ = complex_ - np.linspace(complex_[0], complex_[-1], complex_.size) + signal[at]  # ends on the baseline
    run = np.tile(complex_, beats)
    return (np.concatenate([signal[:at], run, signal[at:]]).astype(float), at + half + np.arange(beats) * complex_.size)


def fuse_beats(signal: np.ndarray, fs: float, beat_r: np.ndarray, template_r: int, weight: float) -> np.ndarray:
    """Fusion beats: each beat's QRS-T complex blended with the patient's ventricular one.

    A fusion beat is a sinus beat whose ventricles are depolarised partly through the conduction
    system and partly from a ventricular focus that fired as the sinus impulse arrived: its complex
    lies between the patient's normal and ventricular ones. Here each beat at ``beat_r`` keeps its
    P wave and timing, and from its QRS onset (:data:`QRS_ONSET_S` before R) to the end of its T wave
    (:data:`T_END_S` after R) becomes ``(1 - weight)`` times itself plus ``weight`` times the complex of
    the ventricular beat at ``template_r``, aligned at R, with the difference tapered to zero at
    both ends so that the baseline stays continuous.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
    fs : float
    beat_r : ndarray of int
        R samples of the sinus beats to fuse.
    template_r : int
        R sample of the patient's ventricular beat.
    weight : float
        The ventricular share, in [-1, 1] (0: the beat unchanged; 1: the ventricular complex on time).
        Below 0 the complex deviates from the beat's own as far the other way: no fusion beat, but
        the QRS of another focus, one that depolarises the ventricles in about the opposite direction
        (multiform ectopy).

    Returns
    -------
    ndarray
        The edited signal, as long as ``signal``.
    """
    if not -1 <= weight <= 1:
        raise ValueError(f"weight must be in [-1, 1], got {weight}")
    before, after = round(QRS_ONSET_S * fs), round(T_END_S * fs)
    taper = np.minimum(1.0, np.minimum(np.arange(before + after), np.arange(before + after)[::-1]) / before)
    out = np.asarray(signal, dtype=float).copy()
    ventricular = out[template_r - before : template_r + after].copy()
    for r in np.asarray(beat_r, dtype=int):
        own = out[r - before : r + after]
        out[r - before : r + after] = own + weight * taper * (ventricular - ventricular[0] - (own - own[0]))
    return out
