"""ecgedge: ECG heartbeat anomaly detection from a workstation GPU to a bedside device.

The base install (``pip install ecgedge``) is the bedside path:
``ecgedge.runtime`` (ONNX Runtime), ``ecgedge.firmware_bridge`` and
``ecgedge.calibration``, on numpy, scipy, onnxruntime, pyserial, cobs and
click. The training side (:class:`LSTMAutoencoderDetector`, :func:`load`)
needs the ``[train]`` extra (torch, scikit-learn) and is imported lazily;
writing bundles needs ``[export]``, WFDB records ``[records]``, TensorRT
``[tensorrt]``.
"""

from __future__ import annotations

from ecgedge._version import __version__

__all__ = ["LSTMAutoencoderDetector", "load", "load_ecg5000", "load_wfdb_record", "__version__"]


def __getattr__(name: str):
    if name == "LSTMAutoencoderDetector":
        from ecgedge.detector import LSTMAutoencoderDetector

        return LSTMAutoencoderDetector
    if name == "load":
        from ecgedge.persistence import load

        return load
    if name in {"load_ecg5000", "load_wfdb_record"}:
        from ecgedge import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'ecgedge' has no attribute {name!r}")
