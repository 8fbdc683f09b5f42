"""Screening archives of recordings (Holter WFDB / EDF files) for abnormal beats, on Dask.

Each recording goes through exactly the offline path
(:mod:`ecgedge.analysis.offline`): the live filters, R-peak detector, beat
cutting, scorer and per-stream threshold, so a scanned recording and the same
recording streamed to ``ecgedge bridge`` give the same beats and flags. Needs the
``[scan]`` extra (dask[distributed], pyarrow, pyedflib) and, for WFDB records, wfdb.

Examples
--------
>>> from ecgedge.scan import Settings, scan
>>> report = scan(["holter/"], "scan-out", Settings(bundle="bundle/"), workers=2)  # doctest: +SKIP
>>> report.failed  # doctest: +SKIP
[]
"""

from ecgedge.scan.recordings import Recording, RecordingError, discover
from ecgedge.scan.runner import ScanReport, scan
from ecgedge.scan.tasks import Settings

__all__ = ["Recording", "RecordingError", "ScanReport", "Settings", "discover", "scan"]
