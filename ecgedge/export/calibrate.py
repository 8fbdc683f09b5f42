"""Change a bundle's decision threshold: the one number in its manifest."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from ecgedge.runtime.bundle import Bundle, read_bundle, write_manifest
from ecgedge.runtime.validate import check_threshold


def set_bundle_threshold(bundle_dir: str | Path, threshold: float, calibration: dict) -> Bundle:
    """Set the threshold of a bundle.

    The graphs and a TensorRT engine output scores only, so the threshold
    is ``bundle.json``'s ``threshold`` alone: rewriting it (and the record
    of how it was chosen) changes every backend at once, an engine built
    earlier included. The bundle is verified before and after, and a
    threshold that every later load would refuse (far outside the training
    beats' scores) is refused before anything is written.

    Parameters
    ----------
    bundle_dir : str or Path
        The bundle (verified before it is changed).
    threshold : float
        New threshold on the score (``score < threshold`` is an anomaly).
    calibration : dict
        How the threshold was chosen, stored under ``"calibration"``.

    Returns
    -------
    Bundle
        The re-read, verified bundle.

    Raises
    ------
    BundleError
        When the threshold lies far outside the training beats' scores.
    """
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    bundle = read_bundle(bundle_dir)
    updated = replace(bundle, manifest={**bundle.manifest, "threshold": threshold, "calibration": dict(calibration)})
    check_threshold(updated)
    write_manifest(bundle.path, updated.manifest)
    return read_bundle(bundle.path)
