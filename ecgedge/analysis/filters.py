"""Causal filters for many streams at once, state kept between chunks.

:func:`scipy.signal.sosfilt` costs about 0.1 ms a call whatever the size,
so filtering 10-sample chunks of 200 boards one by one would take most of a
core. A :class:`FilterBank` keeps the state of every stream side by side and
filters equal-length chunks of many streams in a single call.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

#: The band (Hz) beats are cut from: baseline wander and mains hum out, QRS shape kept.
ECG_BAND = (0.5, 40.0)


def bandpass_sos(low_hz: float, high_hz: float, fs: float, order: int = 2) -> np.ndarray:
    """Butterworth band-pass in second-order sections.

    Raises
    ------
    ValueError
        When the band does not fit below the Nyquist frequency.
    """
    nyquist = fs / 2
    if not 0 < low_hz < high_hz < nyquist:
        raise ValueError(f"band [{low_hz}, {high_hz}] Hz does not fit below Nyquist ({nyquist} Hz) at fs={fs}")
    return signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=fs, output="sos")


class FilterBank:
    """One second-order-sections filter, run causally for many streams.

    Parameters
    ----------
    sos : ndarray of shape (n_sections, 6)
    max_block : int, default=64
        Chunks up to this many samples use the filter's block state-space
        matrices (built once per chunk length, by running ``sosfilt`` on unit
        states and unit impulses); longer chunks use ``sosfilt`` itself. Both
        give the same samples to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> bank = FilterBank(bandpass_sos(0.5, 40.0, 360.0))
    >>> a, b = bank.add(1.0), bank.add(-2.0)  # steady state at each stream's first value
    >>> y = bank.filter(np.array([a, b]), np.array([[1.0] * 10, [-2.0] * 10]))
    >>> bool(np.abs(y).max() < 1e-9)  # a constant offset does not ring through a band-pass
    True
    """

    def __init__(self, sos: np.ndarray, max_block: int = 64) -> None:
        self.sos = np.asarray(sos, dtype=np.float64)
        self.max_block = max_block
        self._sections = self.sos.shape[0]
        self._unit = signal.sosfilt_zi(self.sos).ravel()  # steady state for a unit input
        self._state = np.zeros((0, 2 * self._sections))  # one row per stream: every section's 2 delays
        self._blocks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._free: list[int] = []  # rows given back, reused before the state grows

    @property
    def size(self) -> int:
        """Rows in use."""
        return self._state.shape[0] - len(self._free)

    def add(self, x0: float) -> int:
        """Add a stream whose signal starts at ``x0``; return its slot."""
        if self._free:
            slot = self._free.pop()
            self._state[slot] = self._unit * x0
            return slot
        self._state = np.vstack((self._state, self._unit * x0))
        return self._state.shape[0] - 1

    def free(self, slot: int) -> None:
        """Give a stream's slot back; a later :meth:`add` reuses it."""
        if slot in self._free or not 0 <= slot < self._state.shape[0]:
            raise ValueError(f"slot {slot} is not in use")
        self._free.append(slot)

    def reset(self, slot: int, x0: float) -> None:
        """Restart a stream's filter in the steady state of ``x0`` (after a long gap)."""
        self._state[slot] = self._unit * x0

    def filter(self, slots: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Filter the next chunk of each of ``slots``.

        Parameters
        ----------
        slots : ndarray of int, shape (k,)
            Distinct stream slots.
        x : ndarray of shape (k, n)
            The next ``n`` samples of each.

        Returns
        -------
        ndarray of shape (k, n)
        """
        n = x.shape[1]
        if n > self.max_block:
            y, self._state[slots] = self._sosfilt(x, self._state[slots])
            return y
        # [state, x] @ [[to_output, to_state], [impulse, input_to_state]]
        to_output, to_state = self._block(n)
        both = np.hstack((self._state[slots], x))
        self._state[slots] = both @ to_state
        return both @ to_output

    def _sosfilt(self, x: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        zi = state.reshape(-1, self._sections, 2).transpose(1, 0, 2)
        y, zf = signal.sosfilt(self.sos, x, axis=1, zi=zi)
        return y, zf.transpose(1, 0, 2).reshape(state.shape)

    def _block(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The (state + n inputs) -> (n outputs) and -> (next state) matrices for chunks of n samples."""
        if n not in self._blocks:
            n_state = 2 * self._sections
            basis = np.eye(n_state + n)  # each row: one unit state or one unit impulse
            outputs, states = self._sosfilt(basis[:, n_state:], basis[:, :n_state])
            self._blocks[n] = (outputs, states)
        return self._blocks[n]
