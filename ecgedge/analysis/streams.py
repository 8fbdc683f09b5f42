"""What a stream's samples must be, and the filtering of many streams' samples together.

A stream queues chunks of contiguous samples in mV (:class:`SignalChunk`); a :class:`FilterStage`
band-passes the pending chunks of every stream in :data:`~ecgedge.analysis.filters.ECG_BAND`
and in the R-peak detector's QRS band (:func:`~ecgedge.analysis.rpeaks.qrs_band_sos`), in as few
:func:`scipy.signal.sosfilt` calls as possible, and hands each stream its filtered chunk, in which
the stream finds and cuts its beats (:class:`~ecgedge.analysis.finder.BeatFinder`). The bridge's
streams (:class:`~ecgedge.firmware_bridge.pipeline.StreamPipeline`: a board's ADC counts, gaps and
clock) and a recorded lead (:mod:`ecgedge.analysis.offline`) go through the same stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from ecgedge.analysis.beats import Beat
from ecgedge.analysis.filters import ECG_BAND, FilterBank, bandpass_sos
from ecgedge.analysis.rpeaks import qrs_band_sos

#: Sample rates (Hz) a stream may have: the R-peak detector needs 100 Hz, and beyond 10 kHz is not an ECG.
FS_RANGE = (100.0, 10_000.0)
#: Longest gap (s) in a stream's samples that is bridged by linear interpolation (the beats whose
#: window covers it are marked ``gap``); after a longer one, beat detection starts over.
MAX_FILL_S = 1.0


class SignalChunk(Protocol):
    """Contiguous samples (mV) of one stream, from index ``start``; ``restart``: detection starts over at it."""

    start: int
    x: np.ndarray
    restart: bool


C = TypeVar("C", bound=SignalChunk)


class FilteredStream(Protocol[C]):
    """A stream as a :class:`FilterStage` runs it.

    Attributes
    ----------
    name : str
    slot : (float, int) or None
        The stream's sample rate and row in the stage's filter banks; set by the stage.
    """

    name: str
    slot: tuple[float, int] | None

    def known_fs(self) -> float:
        """The stream's sample rate (Hz); its chunks wait only once it is known."""
        ...

    def take(self) -> list[C]:
        """The chunks queued since the last call, oldest first."""
        ...

    def process(self, chunk: C, y: np.ndarray, qrs: np.ndarray) -> list[Beat]:
        """The beats a chunk completes, given it filtered in the ECG band (``y``) and the QRS band (``qrs``)."""
        ...

    def reset(self) -> None:
        """Start beat detection over at the next chunk (its processing failed)."""
        ...


S = TypeVar("S", bound=FilteredStream[Any])


class FilterStage:
    """Band-pass the queued chunks of many streams together.

    Streams with the same sample rate share a pair of :class:`FilterBank`
    (ECG band and QRS band); chunks of equal length go through one
    :func:`scipy.signal.sosfilt` call per band. A stream whose sample rate
    changes gives its rows back; a bank without rows is dropped, so boards
    changing format do not make the banks grow.
    """

    def __init__(self) -> None:
        self._banks: dict[float, tuple[FilterBank, FilterBank]] = {}

    @property
    def rows(self) -> dict[float, int]:
        """Rows in use per sample rate."""
        return {fs: ecg.size for fs, (ecg, _) in self._banks.items()}

    def _bank(self, fs: float) -> tuple[FilterBank, FilterBank]:
        if fs not in self._banks:
            self._banks[fs] = (FilterBank(bandpass_sos(*ECG_BAND, fs)), FilterBank(qrs_band_sos(fs)))
        return self._banks[fs]

    def release(self, stream: FilteredStream[Any]) -> None:
        """Give back a stream's rows (its sample rate changed, or it is gone)."""
        if stream.slot is None:
            return
        fs, row = stream.slot
        stream.slot = None
        ecg, qrs = self._banks[fs]
        ecg.free(row)
        qrs.free(row)
        if ecg.size == 0:
            del self._banks[fs]

    def _place(self, stream: FilteredStream[Any], chunk: SignalChunk) -> int:
        """Give the stream a row in its sample rate's banks, or restart its row; return the row."""
        fs = stream.known_fs()
        if stream.slot is not None and stream.slot[0] != fs:
            self.release(stream)
        ecg, qrs = self._bank(fs)
        if stream.slot is None:
            stream.slot = (fs, ecg.add(chunk.x[0]))
            qrs.add(0.0)
        elif chunk.restart:
            ecg.reset(stream.slot[1], chunk.x[0])
            qrs.reset(stream.slot[1], 0.0)
        return stream.slot[1]

    def run(
        self, streams: Sequence[S], on_signal: Callable[[str, float, int, np.ndarray], None] | None = None
    ) -> tuple[list[Beat], list[tuple[S, Exception]]]:
        """Filter every queued chunk and return the beats they complete, stream by stream.

        A stream whose processing fails is reset and left out of the rest of
        this call, so one stream's failure costs no other stream anything.
        ``on_signal(stream, fs, start, y)``, when given, gets each filtered chunk.

        Returns
        -------
        beats : list of Beat
        failures : list of (stream, Exception)
        """
        queued = [(s, s.take()) for s in streams]
        beats: list[Beat] = []
        failures: list[tuple[S, Exception]] = []
        depth = 0
        while True:
            failed = {id(s) for s, _ in failures}
            groups: dict[tuple[float, int], list[tuple[S, Any]]] = {}
            for s, chunks in queued:
                if depth < len(chunks) and id(s) not in failed:
                    chunk = chunks[depth]
                    groups.setdefault((s.known_fs(), chunk.x.size), []).append((s, chunk))
            if not groups:
                return beats, failures
            for (fs, _), members in groups.items():
                rows = np.array([self._place(s, chunk) for s, chunk in members])
                ecg, qrs = self._bank(fs)
                y = ecg.filter(rows, np.stack([chunk.x for _, chunk in members]))
                q = qrs.filter(rows, y)
                for i, (s, chunk) in enumerate(members):
                    try:
                        if on_signal is not None:
                            on_signal(s.name, fs, chunk.start, y[i])
                        beats.extend(s.process(chunk, y[i], q[i]))
                    except Exception as exc:  # noqa: BLE001 - contained to this stream, reported by the hub
                        s.reset()
                        failures.append((s, exc))
            depth += 1
