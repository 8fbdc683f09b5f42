"""The bedside side: an ECG board's serial stream in, flagged beats out.

Modules, one job each: :mod:`.protocol` (the wire format), :mod:`.decoder`
(bytes -> board events, as :mod:`serial.threaded` protocols), :mod:`.source`
(a port that reconnects), :mod:`.filters` and :mod:`.pipeline` (causal
filtering of many streams, one stream's samples to beats), :mod:`.rpeaks`
(streaming R-peak detection), :mod:`.beats` (cutting beats as the model's
were cut), :mod:`.judge` (a stream's threshold and flags), :mod:`.events`
and :mod:`.signal_quality` (what the bridge reports when it is not
monitoring), :mod:`.sinks` (JSON lines, SQLite), :mod:`.hub` (many boards,
one process), :mod:`.workers` (groups of boards in worker processes, one
parent writing every sink), :mod:`.offline` (the same path over a recording) and
:mod:`.simulator` (virtual boards for tests and demos). Nothing here
imports torch or scikit-learn; ports, sinks and the hub close as context
managers.
"""
