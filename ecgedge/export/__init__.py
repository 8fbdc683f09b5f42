"""Export a fitted detector to a deployment bundle: ONNX FP32, INT8, FP16, TensorRT.

Workstation side (imports torch and onnx); the device reads bundles with
:mod:`ecgedge.runtime`.
"""

from ecgedge.export.bundle import export_bundle
from ecgedge.export.calibrate import set_bundle_threshold
from ecgedge.runtime.tensorrt_backend import TensorRTUnavailable

__all__ = ["TensorRTUnavailable", "export_bundle", "set_bundle_threshold"]
