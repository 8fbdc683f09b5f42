"""Change a bundle's decision threshold, keeping graphs, manifest and checksums consistent."""

from __future__ import annotations

import math
from pathlib import Path

from ecgedge.export.onnx_graph import set_graph_threshold
from ecgedge.runtime.bundle import PRECISIONS, Bundle, read_bundle, write_manifest


def set_bundle_threshold(bundle_dir: str | Path, threshold: float, calibration: dict) -> Bundle:
    """Set the threshold of a bundle.

    The runtime compares scores with ``bundle.json``'s ``threshold``; the
    ONNX graphs' own ``anomaly`` output compares with a threshold embedded
    in each graph. Both are rewritten here, then every checksum is
    recomputed, so the bundle stays verifiable and self-consistent. A
    TensorRT engine keeps the threshold it was built with in its ``anomaly``
    output; the runtime reads only its ``score``.

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
    for role in PRECISIONS:
        if role in bundle.manifest["artifacts"]:
            set_graph_threshold(bundle.file(role), threshold)
    manifest = {**bundle.manifest, "threshold": threshold, "calibration": dict(calibration)}
    write_manifest(bundle.path, manifest)
    return read_bundle(bundle.path)
