"""The bedside side: an ECG board's serial stream in, flagged beats out.

Modules, one job each: :mod:`.protocol` (the wire format), :mod:`.decoder`
(bytes -> board events, as :mod:`serial.threaded` protocols), :mod:`.source`
(a port that reconnects), :mod:`.simulator` (virtual boards for tests and
demos). Nothing here imports torch or scikit-learn.
"""
