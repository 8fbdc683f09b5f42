"""Noise of the shapes that spoil real ECGs, added to a recorded lead at a chosen SNR.

The MIT-BIH Noise Stress Test Database (Moody, Muldrow & Mark 1984) records its noise on people;
it is not bundled, so these are stand-ins with the same character, made from seeded white noise:

- ``"wander"``: baseline wander, four sines of 0.1-0.5 Hz (breathing, slow electrode drift);
- ``"mains"``: 60 Hz hum whose amplitude swells and fades slowly;
- ``"muscle"``: muscle (EMG) noise, white noise band-passed to 10-150 Hz (over the QRS band)
  in bursts of a slowly varying envelope;
- ``"motion"``: electrode motion, large 1-10 Hz transients in bursts of about a second, the
  noise that most resembles beats.
"""

from __future__ import annotations

import numpy as np

NOISE_KINDS = ("wander", "mains", "muscle", "motion")


def _noise(kind: str, n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    t = np.arange(n) / fs
    if kind == "wander":
        return sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in rng.uniform(0.1, 0.5, 4))
    if kind == "mains":
        return np.sin(2 * np.pi * 60.0 * t) * (1 + 0.3 * np.sin(2 * np.pi * 0.05 * t + rng.uniform(0, 2 * np.pi)))
    if kind == "muscle":
        burst = sosfilt(butter(1, 0.5, fs=fs, output="sos"), np.abs(rng.normal(size=n)))  # slow envelope
        return (
            sosfilt(butter(2, [10, min(150, 0.45 * fs)], btype="bandpass", fs=fs, output="sos"), rng.normal(size=n))
            * burst
        )
    if kind == "motion":
        burst = sosfilt(butter(1, 0.5, fs=fs, output="sos"), rng.normal(size=n)) > 0  # on about half the time
        return sosfilt(butter(2, [1, 10], btype="bandpass", fs=fs, output="sos"), rng.normal(size=n)) * burst
    raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")


def add_noise(
    signal: np.ndarray, fs: float, snr_db: float, kinds=("wander", "mains", "muscle"), seed: int = 0
) -> np.ndarray:
    """The lead plus equal powers of the named noises, scaled to ``snr_db`` over the lead's variance.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        The lead (mV).
    fs : float
        Sample rate in Hz.
    snr_db : float
        Signal-to-noise ratio: 10 log10 of the lead's variance over the noise's.
    kinds : sequence of str, default=("wander", "mains", "muscle")
        Among :data:`NOISE_KINDS`.
    seed : int, default=0

    Returns
    -------
    ndarray of shape (n_samples,)

    Examples
    --------
    >>> x = np.sin(np.linspace(0, 100, 36000))
    >>> noisy = add_noise(x, 360.0, 6.0, kinds=["motion"])
    >>> round(float(10 * np.log10(x.var() / (noisy - x).var())), 6)
    6.0
    """
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1 or not signal.size:
        raise ValueError(f"signal must be a non-empty 1-D array, got shape {signal.shape}")
    rng = np.random.default_rng(seed)
    parts = [_noise(kind, signal.size, fs, rng) for kind in kinds]
    noise = sum(part / part.std() for part in parts)
    noise *= np.sqrt(signal.var() / noise.var() / 10 ** (snr_db / 10))
    return signal + noise
