"""Bundled ECG data and loaders in the style of :mod:`sklearn.datasets`."""

from ecgedge.datasets._annotated import AnnotatedBeats, load_annotated_beats
from ecgedge.datasets._ecg5000 import load_ecg5000
from ecgedge.datasets._files import LABEL_CONVENTION, load_beats_file
from ecgedge.datasets._noise import NOISE_KINDS, add_noise
from ecgedge.datasets._scenarios import block_conduction, change_rate, fuse_beats, insert_run
from ecgedge.datasets._wfdb import (
    Annotations,
    WfdbRecord,
    cut_annotated_beats,
    default_record_path,
    load_other_leads,
    load_wfdb_record,
    read_annotations,
)

__all__ = [
    "AnnotatedBeats",
    "Annotations",
    "LABEL_CONVENTION",
    "NOISE_KINDS",
    "WfdbRecord",
    "add_noise",
    "block_conduction",
    "change_rate",
    "fuse_beats",
    "insert_run",
    "cut_annotated_beats",
    "default_record_path",
    "load_annotated_beats",
    "load_beats_file",
    "load_ecg5000",
    "load_other_leads",
    "load_wfdb_record",
    "read_annotations",
]
