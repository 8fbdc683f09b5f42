"""The analysis of one ECG stream: the clinical logic, with no I/O.

Everything that decides what a stream's samples mean lives here, and the bridge
(:mod:`ecgedge.firmware_bridge`), ``ecgedge scan`` and ``ecgedge evaluate`` all run it:
:mod:`.filters` (causal band-pass filters with state), :mod:`.rpeaks` (streaming R-peak
detection), :mod:`.beats` (cutting beats as the model's were cut), :mod:`.signal_quality`
(flat lines and ADC rails), :mod:`.judge` (a beat's verdict: learning, adapted to the patient,
or by a threshold). Numpy and scipy only: nothing here imports torch or scikit-learn, or opens a
port or a file.
"""
