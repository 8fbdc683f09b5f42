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
    beat_format = _beat_format(detector, beat_format, length)
    check_profile(opt_batch, max_batch)
    out = _fresh_dir(out_dir)
    fp16 = fp16 or trt
    artifacts = _write_models(detector, out, int8=int8)
    manifest = _manifest(detector, beat_format, length=length, opt_batch=opt_batch, max_batch=max_batch)
    scripts: list[str] = []
    if fp16:
        script = _write_fp16(out, artifacts, length=length, opt_batch=opt_batch, max_batch=max_batch)
        manifest["tensorrt"]["script"] = script
        scripts.append(script)
    _describe_and_write(out, manifest, artifacts, scripts)
    if trt:
        _add_engine(out, manifest, artifacts, length=length, opt_batch=opt_batch, max_batch=max_batch)
    return out


def _beat_format(detector, beat_format: BeatFormat | None, length: int) -> BeatFormat:
    """The beat format of the bundle: the one given, else the detector's own, else ECG5000's at ``length``.

    Parameters
    ----------
    detector : LSTMAutoencoderDetector
        The fitted detector.
    beat_format : BeatFormat or None
        The format asked for.
    length : int
        Samples per beat the model takes.

    Returns
    -------
    BeatFormat

    Raises
    ------
    ValueError
        When the format's beat length is not the model's.
    """
    recorded = getattr(detector, "beat_format", None)
    beat_format = beat_format or (BeatFormat.from_dict(recorded) if recorded else BeatFormat(length=length))
    if beat_format.length != length:
        raise ValueError(f"beat_format.length={beat_format.length} but the model takes beats of {length} samples")
    return beat_format


def _fresh_dir(out_dir: str | Path) -> Path:
    """Create the bundle directory and remove the files an earlier bundle left in it.

    Parameters
    ----------
    out_dir : str or Path

    Returns
    -------
    Path
        The directory.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (*FILES.values(), ENGINE, MANIFEST, SCRIPT):
        (out / stale).unlink(missing_ok=True)
    return out


def _write_models(detector, out: Path, *, int8: bool) -> dict[str, str]:
    """Write the FP32 graph, the detector, the training scores (when it has any) and optionally the INT8 graph.

    Parameters
    ----------
    detector : LSTMAutoencoderDetector
        The fitted detector.
    out : Path
        The bundle directory.
    int8 : bool
        Write the INT8 graph.

    Returns
    -------
    dict of str to str
        File name of each artifact written, by role (keys of :data:`FILES`).
    """
    artifacts = {"fp32": FILES["fp32"], "detector": FILES["detector"]}
    onnx_graph.export_fp32(detector, out / FILES["fp32"])
    detector.save(out / FILES["detector"])
    reference = detector.module_.reference
    if reference is not None and reference.training_scores.numel():
        np.save(out / FILES["training_scores"], reference.training_scores.numpy().astype(np.float64))
        artifacts["training_scores"] = FILES["training_scores"]
    if int8:
        artifacts["int8"] = onnx_graph.quantize_int8(out / FILES["fp32"], out / FILES["int8"]).name
    return artifacts


def _manifest(detector, beat_format: BeatFormat, *, length: int, opt_batch: int, max_batch: int) -> dict[str, Any]:
    """The manifest's sections that describe the detector, its inputs and the build settings.

    Parameters
    ----------
    detector : LSTMAutoencoderDetector
        The fitted detector.
    beat_format : BeatFormat
        How the bundle's beats are cut.
    length : int
        Samples per beat.
    opt_batch, max_batch : int
        TensorRT optimisation profile.

    Returns
    -------
    dict
        The manifest, without its script, ``model_id``, artifacts and files.
    """
    return {
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


def _write_fp16(out: Path, artifacts: dict[str, str], *, length: int, opt_batch: int, max_batch: int) -> str:
    """Write the FP16 graph (added to ``artifacts``) and the device's engine build script.

    Parameters
    ----------
    out : Path
        The bundle directory, holding the FP32 graph.
    artifacts : dict of str to str
        File name of each artifact by role; gains ``"fp16"``.
    length : int
        Samples per beat.
    opt_batch, max_batch : int
        TensorRT optimisation profile.

    Returns
    -------
    str
        The build script's file name.
    """
    artifacts["fp16"] = onnx_graph.convert_fp16(out / FILES["fp32"], out / FILES["fp16"]).name
    script = write_build_script(out, artifacts, length=length, opt_batch=opt_batch, max_batch=max_batch)
    return script.name


def _describe_and_write(out: Path, manifest: dict[str, Any], artifacts: dict[str, str], scripts: list[str]) -> None:
    """Give the manifest its ``model_id``, write it into every graph's metadata, then list the files and write it.

    Parameters
    ----------
    out : Path
        The bundle directory.
    manifest : dict
        The manifest so far; gains ``model_id``, ``artifacts`` and ``files``.
    artifacts : dict of str to str
        File name of each artifact by role.
    scripts : list of str
        File names of the scripts written.
    """
    manifest["model_id"] = model_id(manifest)
    for role in PRECISIONS:
        if role in artifacts:
            onnx_graph.describe_graph(out / artifacts[role], graph_description(manifest))
    manifest["artifacts"] = artifacts
    manifest["files"] = dict.fromkeys([*artifacts.values(), *scripts], "")
    write_manifest(out, manifest)


def _add_engine(
    out: Path, manifest: dict[str, Any], artifacts: dict[str, str], *, length: int, opt_batch: int, max_batch: int
) -> None:
    """Build the TensorRT engine here and add it to the bundle's manifest.

    Parameters
    ----------
    out : Path
        The complete bundle directory.
    manifest : dict
        The bundle's manifest; gains ``engine`` and the engine's file, and is written again.
    artifacts : dict of str to str
        File name of each artifact by role; gains ``"engine"``.
    length : int
        Samples per beat.
    opt_batch, max_batch : int
        TensorRT optimisation profile.

    Raises
    ------
    TensorRTUnavailable
        When TensorRT is not installed; the message says how to build the engine on the device.
    """
    paths = {role: out / name for role, name in artifacts.items()}
    try:
        manifest["engine"] = build_engine(paths, out / ENGINE, length=length, opt_batch=opt_batch, max_batch=max_batch)
    except TensorRTUnavailable as err:
        raise TensorRTUnavailable(
            f"{err}\nThe bundle in {out} is complete without an engine; build one on the device with {out / SCRIPT}"
        ) from err
    artifacts["engine"] = ENGINE
    manifest["files"][ENGINE] = ""
    write_manifest(out, manifest)
