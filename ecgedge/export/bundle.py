"""Write a deployment bundle from a fitted detector."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ecgedge.beatformat import BeatFormat
from ecgedge.export import onnx_graph
from ecgedge.export.tensorrt import ENGINE, SCRIPT, build_engine, check_profile, write_build_script
from ecgedge.runtime.bundle import FORMAT, FORMAT_VERSION, MANIFEST, PRECISIONS, write_manifest
from ecgedge.runtime.tensorrt_backend import TensorRTUnavailable

FILES = {
    "fp32": "model.onnx",
    "int8": "model.int8.onnx",
    "fp16": "model.fp16.onnx",
    "detector": "detector.npz",
    "training_scores": "training_scores.npy",
}
DEFAULT_OPT_BATCH = 256
DEFAULT_MAX_BATCH = 4096

SCORE_DEFINITION = (
    "score = the detector's score_samples, computed inside the ONNX graph by ecgedge.nn.BeatScorer: each beat "
    "is z-normalised over its own samples (when 'standardize'), reconstructed by the autoencoder, and scored "
    "by minus its reconstruction error ('loss'){reference}. Higher is more normal; a beat is an anomaly "
    "when score < threshold, the manifest's 'threshold' unless a stream's own state overrides it."
)
#: The manifest sections that identify the model a graph computes (its ``model_id``).
DESCRIBING = ("beat", "score", "detector")


def _score_section(detector) -> dict:
    reference = getattr(detector.module_, "reference", None)
    section = {
        "loss": detector.loss,
        "standardize": bool(detector.standardize),
        "higher_is_normal": True,
        "anomaly_rule": "score < threshold",
    }
    if reference is not None:
        section["reference"] = {
            name: getattr(reference, name) for name in ("n_neighbors", "top_fraction", "distance_weight")
        }
        section["reference"]["patch_directions"] = int(reference.basis.shape[1])
        section["reference"]["n_patches"] = int(reference.centres.shape[0])
    note = ", combined with the distance to the nearest local patches of normal training beats ('reference')"
    note = "" if reference is None else note
    section["definition"] = SCORE_DEFINITION.format(reference=note)
    return section


def model_id(manifest: dict) -> str:
    """SHA-256 of the manifest sections that say what the model computes (:data:`DESCRIBING`).

    Graphs carry it in their metadata, so a graph and a manifest that belong
    together can be told from a graph swapped in from another bundle.
    """
    text = json.dumps({key: manifest[key] for key in DESCRIBING}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def graph_description(manifest: dict) -> dict[str, str]:
    """What every graph of a bundle says about itself (ONNX ``metadata_props``)."""
    return {
        "beat_format": json.dumps(manifest["beat"], sort_keys=True),
        "score": "higher is more normal; anomaly when score < threshold (threshold in bundle.json)",
        "version": manifest["versions"]["ecgedge"],
        "model_id": manifest["model_id"],
    }


def _versions() -> dict:
    import numpy
    import onnx
    import onnxruntime
    import torch

    from ecgedge import __version__

    return {
        "ecgedge": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "onnx_opset": onnx_graph.OPSET,
    }


def _as_detector(detector):
    if isinstance(detector, (str, Path)):
        from ecgedge.persistence import load

        return load(detector)
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(detector)
    return detector


def export_bundle(
    detector,
    out_dir: str | Path,
    *,
    int8: bool = True,
    fp16: bool = True,
    trt: bool = False,
    opt_batch: int = DEFAULT_OPT_BATCH,
    max_batch: int = DEFAULT_MAX_BATCH,
    beat_format: BeatFormat | None = None,
) -> Path:
    """Export a fitted detector as a deployment bundle directory.

    Always writes ``model.onnx`` (FP32, dynamic batch; input ``beats``
    (batch, length) float32, output ``score`` (batch,) float32, no
    threshold), ``detector.npz`` (the detector itself, for
    the torch backend), ``training_scores.npy`` (leave-one-out scores of
    the training beats, for ``ecgedge calibrate --normal training``; when the
    model has normal-beat patches) and ``bundle.json``; optionally ``model.int8.onnx``
    (ONNX Runtime dynamic quantisation), ``model.fp16.onnx`` (FP16 inside,
    FP32 inputs and outputs) with ``build_engine.sh`` (trtexec on the
    device), and a TensorRT engine ``model.engine``.

    Parameters
    ----------
    detector : LSTMAutoencoderDetector or str or Path
        A fitted detector, or the path of a saved one.
    out_dir : str or Path
        Bundle directory (created; files of an earlier bundle are replaced).
    int8 : bool, default=True
        Write the INT8 graph.
    fp16 : bool, default=True
        Write the FP16 graph and the engine build script.
    trt : bool, default=False
        Build a TensorRT engine here (needs ``tensorrt``; implies ``fp16``).
    opt_batch, max_batch : int
        TensorRT optimisation profile: batch 1 to ``max_batch``, tuned for
        ``opt_batch``.
    beat_format : BeatFormat, optional
        How beats are cut; default the detector's own ``beat_format``, else
        the ECG5000 window at the model's length.

    Returns
    -------
    Path
        The bundle directory.

    Raises
    ------
    TensorRTUnavailable
        When ``trt=True`` and TensorRT is not installed; the rest of the
        bundle, including ``build_engine.sh``, is written first.
    """
    detector = _as_detector(detector)
    length = int(detector.n_features_in_)
    recorded = getattr(detector, "beat_format", None)
    beat_format = beat_format or (BeatFormat.from_dict(recorded) if recorded else BeatFormat(length=length))
    if beat_format.length != length:
        raise ValueError(f"beat_format.length={beat_format.length} but the model takes beats of {length} samples")
    check_profile(opt_batch, max_batch)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (*FILES.values(), ENGINE, MANIFEST, SCRIPT):
        (out / stale).unlink(missing_ok=True)
    fp16 = fp16 or trt
    artifacts = {"fp32": FILES["fp32"], "detector": FILES["detector"]}
    onnx_graph.export_fp32(detector, out / FILES["fp32"])
    detector.save(out / FILES["detector"])
    reference = detector.module_.reference
    if reference is not None and reference.training_scores.numel():
        np.save(out / FILES["training_scores"], reference.training_scores.numpy().astype(np.float64))
        artifacts["training_scores"] = FILES["training_scores"]
    if int8:
        artifacts["int8"] = onnx_graph.quantize_int8(out / FILES["fp32"], out / FILES["int8"]).name
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "beat": beat_format.to_dict(),
        "threshold": float(detector.offset_),
        "calibration": {"method": "detector", "contamination": detector.contamination},
        "score": _score_section(detector),
        "io": {
            "input": onnx_graph.INPUT,
            "score": onnx_graph.SCORE,
            "input_shape": ["batch", length],
            "dtype": "float32",
        },
        "tensorrt": {"opt_batch": opt_batch, "max_batch": max_batch},
        "detector": {"params": detector.get_params(), "n_features_in": length},
        "versions": _versions(),
    }
    if fp16:
        artifacts["fp16"] = onnx_graph.convert_fp16(out / FILES["fp32"], out / FILES["fp16"]).name
        script = write_build_script(out, artifacts, length=length, opt_batch=opt_batch, max_batch=max_batch)
        manifest["tensorrt"]["script"] = script.name
    manifest["model_id"] = model_id(manifest)
    for role in PRECISIONS:
        if role in artifacts:
            onnx_graph.describe_graph(out / artifacts[role], graph_description(manifest))
    manifest["artifacts"] = artifacts
    scripts = [manifest["tensorrt"]["script"]] if fp16 else []
    manifest["files"] = dict.fromkeys([*artifacts.values(), *scripts], "")
    write_manifest(out, manifest)
    if trt:
        paths = {role: out / name for role, name in artifacts.items()}
        try:
            manifest["engine"] = build_engine(
                paths, out / ENGINE, length=length, opt_batch=opt_batch, max_batch=max_batch
            )
        except TensorRTUnavailable as err:
            raise TensorRTUnavailable(
                f"{err}\nThe bundle in {out} is complete without an engine; build one on the device with {out / SCRIPT}"
            ) from err
        artifacts["engine"] = ENGINE
        manifest["files"][ENGINE] = ""
        write_manifest(out, manifest)
    return out
