"""The bedside side: an ECG board's serial stream in, flagged beats out.

Modules, one job each: :mod:`.protocol` (the wire format), :mod:`.decoder`
(bytes -> board events, as :mod:`serial.threaded` protocols), :mod:`.source`
(a port that reconnects), :mod:`.pipeline` (a board's blocks to one
stream's samples, filtered for many streams together and cut into beats by
:mod:`ecgedge.analysis`), :mod:`.events` (what the bridge reports when it is
not monitoring), :mod:`.sinks` (JSON lines, SQLite), :mod:`.hub` (many boards,
one process), :mod:`.workers` (groups of boards in worker processes, one
parent writing every sink) and :mod:`.simulator` (virtual boards for tests and
demos). The clinical logic (the ECG band, R peaks, beats, signal quality, rhythm,
verdicts) and the same path over a recording (:mod:`ecgedge.analysis.offline`)
are :mod:`ecgedge.analysis`'s. Nothing here
imports torch or scikit-learn; ports, sinks and the hub close as context
managers.
"""
