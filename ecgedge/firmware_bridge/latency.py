"""Latency percentiles in constant memory, however long the bridge runs.

A bridge left on a ward for weeks commits millions of beats; keeping every latency to take its
percentiles grows without end (a list of a million floats is about 30 MB in Python). A histogram of
fixed, logarithmically spaced bins keeps the same percentiles to within half a bin (0.6 % with 200
bins per decade) in a few kilobytes, and two of its snapshots give the percentiles of the time
between them.
"""

from __future__ import annotations

import numpy as np

#: Latencies (s) the bins span; smaller or larger ones are counted in the first or last bin.
RANGE_S = (1e-5, 1e3)
#: Bins per factor of ten: neighbouring bin edges differ by 1.2 %.
BINS_PER_DECADE = 200


class LatencyHistogram:
    """Count latencies (s) in log-spaced bins; report percentiles (ms) and the largest.

    Examples
    --------
    >>> h = LatencyHistogram()
    >>> h.add([0.010, 0.020, 0.030, 0.040])
    >>> round(h.percentile(50) * 1000), round(h.max * 1000, 1), h.count
    (20, 40.0, 4)
    >>> earlier = h.snapshot()
    >>> h.add([0.5])
    >>> round(h.since(earlier).percentile(50), 2)
    0.5
    """

    def __init__(self) -> None:
        low, high = np.log10(RANGE_S[0]), np.log10(RANGE_S[1])
        self._edges = np.logspace(low, high, round((high - low) * BINS_PER_DECADE) + 1)
        self._counts = np.zeros(self._edges.size + 1, dtype=np.int64)
        self.max = float("-inf")

    @property
    def count(self) -> int:
        """Latencies counted."""
        return int(self._counts.sum())

    def add(self, seconds) -> None:
        """Count latencies (any iterable of seconds)."""
        values = np.fromiter(seconds, dtype=np.float64)
        if values.size:
            np.add.at(self._counts, np.searchsorted(self._edges, values), 1)
            self.max = max(self.max, float(values.max()))

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (s): the geometric middle of its bin (at most the largest); None when empty."""
        total = self._counts.sum()
        if not total:
            return None
        i = int(np.searchsorted(np.cumsum(self._counts), q / 100 * total))
        lo = self._edges[max(i - 1, 0)]
        hi = self._edges[min(i, self._edges.size - 1)]
        return float(min(np.sqrt(lo * hi), self.max))

    def summary_ms(self) -> dict:
        """``{"p50", "p99", "max"}`` in milliseconds (None when empty), as the bridge's summary reports them."""
        p50, p99 = self.percentile(50), self.percentile(99)
        return {
            "p50": None if p50 is None else 1000 * p50,
            "p99": None if p99 is None else 1000 * p99,
            "max": 1000 * self.max if self.count else None,
        }

    def snapshot(self) -> LatencyHistogram:
        """A copy of the counts so far."""
        copy = LatencyHistogram.__new__(LatencyHistogram)
        copy._edges, copy._counts, copy.max = self._edges, self._counts.copy(), self.max
        return copy

    def since(self, earlier: LatencyHistogram) -> LatencyHistogram:
        """The latencies counted after ``earlier`` (a :meth:`snapshot`); its ``max`` is the overall one."""
        later = self.snapshot()
        later._counts = self._counts - earlier._counts
        return later
