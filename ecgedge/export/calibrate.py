"""Change a bundle's decision threshold: the one number in its manifest."""

from __future__ import annotations

import math
from pathlib import Path

from ecgedge.runtime.bundle import Bundle, read_bundle, write_manifest


def set_bundle_threshold(bundle_dir: str | Path, threshold: float, calibration: dict) -> Bundle:
    """Set the threshold of a bundle.

    The graphs and a TensorRT engine output scores only, so the threshold
    is ``bundle.json``'s ``threshold`` alone: rewriting it (and the record
    of how it was chosen) changes every backend at once, an engine built
    earlier included. The bundle is verified before and after.

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
    """
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    bundle = read_bundle(bundle_dir)
    write_manifest(bundle.path, {**bundle.manifest, "threshold": threshold, "calibration": dict(calibration)})
    return read_bundle(bundle.path)
