"""Decision thresholds: from normal beats, from labels, and per patient on the device.

numpy only: nothing here imports torch or scikit-learn.
"""

from ecgedge.calibration.memory import BeatContext, PatientMemory
from ecgedge.calibration.patient import PatientCalibrator
from ecgedge.calibration.thresholds import (
    best_f1_threshold,
    contamination_threshold,
    false_alarm_threshold,
    mean_std_threshold,
    robust_threshold,
    youden_threshold,
)

__all__ = [
    "BeatContext",
    "PatientCalibrator",
    "PatientMemory",
    "best_f1_threshold",
    "contamination_threshold",
    "false_alarm_threshold",
    "mean_std_threshold",
    "robust_threshold",
    "youden_threshold",
]
