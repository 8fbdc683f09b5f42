"""``ecgedge export`` and ``ecgedge calibrate``: deployment bundles and their thresholds."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import click
import numpy as np

from ecgedge.cli.options import read_beats, requires


def _parked(path: Path, what: str) -> Path:
    """A new, unused name beside ``path`` for a directory being built or replaced."""
    return path.with_name(f".{path.name}.{what}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def check_bundle_target(out: Path) -> Path:
    """Check, before any work, that a bundle can be written to ``out`` (a new or a bundle directory)."""
    from ecgedge.runtime.bundle import MANIFEST

    out = out.resolve() if out.is_symlink() else out  # a link to the bundle stays; its target is replaced
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} exists and is not a directory", param_hint="--out")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise click.BadParameter(
            f"{out} exists and is not a bundle (no {MANIFEST}); give a new or a bundle "
            "directory, it is replaced as a whole",
            param_hint="--out",
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise click.BadParameter(f"cannot create {out.parent}: {err}", param_hint="--out") from None
    return out


def write_bundle(model, out: Path, **options) -> str | None:
    """Export ``model`` to the bundle directory ``out`` without ever leaving a broken bundle there.

    The bundle is built in a new directory beside ``out`` and swapped in
    when complete: an error or Ctrl-C during the export leaves the old bundle
    at ``out`` as it was. Returns a warning when the optional TensorRT engine
    was skipped (TensorRT not installed), else None.
    """
    from ecgedge.export import TensorRTUnavailable, export_bundle

    building = _parked(out, "building")
    os.mkdir(building)
    warning = None
    try:
        try:
            export_bundle(model, building, **options)
        except TensorRTUnavailable as err:  # raised after the rest of the bundle is written
            warning = f"no TensorRT engine: {err}; run build_engine.sh on the device to build one"
        old = _parked(out, "old") if out.exists() else None
        if old is not None:
            os.rename(out, old)
        try:
            os.rename(building, out)
        except BaseException:
            if old is not None:
                os.rename(old, out)
            raise
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old)
    return warning


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Bundle directory to write (a new directory, or a bundle it replaces as a whole).",
)
@click.option(
    "--int8/--no-int8", default=True, show_default=True, help="INT8 graph (ONNX Runtime dynamic quantisation)."
)
@click.option(
    "--fp16/--no-fp16", default=True, show_default=True, help="FP16 graph and build_engine.sh (trtexec on the device)."
)
@click.option(
    "--trt",
    is_flag=True,
    help="Also build a TensorRT engine here (needs the [tensorrt] extra; implies "
    "--fp16). Without TensorRT the engine is skipped with a warning and the exit status is 0.",
)
@click.option(
    "--opt-batch",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="TensorRT profile: batch size to tune for.",
)
@click.option(
    "--max-batch", type=click.IntRange(min=1), default=4096, show_default=True, help="TensorRT profile: largest batch."
)
@requires("export")
def export(model: Path, out: Path, int8: bool, fp16: bool, trt: bool, opt_batch: int, max_batch: int) -> None:
    """Export the detector in MODEL (default: the shipped population model) to a deployment bundle in --out.

    The FP32 graph is always written, the INT8 and FP16 graphs unless
    --no-int8 / --no-fp16 (--trt needs the FP16 one). The bundle is built beside
    --out and swapped in when complete, so an error or Ctrl-C leaves an
    earlier bundle there intact.
    """
    from ecgedge.persistence import ModelFileError
    from ecgedge.runtime import read_bundle

    if model is None:
        from ecgedge.models import population_model_path

        model = population_model_path()
    out = check_bundle_target(out)
    try:
        warning = write_bundle(model, out, int8=int8, fp16=fp16, trt=trt, opt_batch=opt_batch, max_batch=max_batch)
    except (ModelFileError, ValueError, RuntimeError) as err:
        raise click.ClickException(str(err)) from err
    bundle = read_bundle(out)
    click.echo(f"wrote bundle {out} (threshold {bundle.threshold:.6g}, beats of {bundle.beat_format.length} samples):")
    for name in sorted(bundle.manifest["files"]):
        click.echo(f"  {name:18s} {(out / name).stat().st_size:9d} bytes  sha256 {bundle.manifest['files'][name][:16]}")
    if warning:
        click.echo(f"Warning: {warning}", err=True)


def _read_calibration_beats(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Beats and labels (1 = normal, None when unlabelled) for ``calibrate``."""
    if path.endswith(".npy"):
        if not Path(path).is_file():
            raise click.BadParameter(f"{path} does not exist", param_hint="--normal")
        try:
            beats = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise click.BadParameter(
                f"{path} is not a readable .npy array of numbers: {err}", param_hint="--normal"
            ) from None
        if beats.ndim != 2:
            raise click.BadParameter(
                f"{path} must hold beats (n_beats, n_samples), not shape {beats.shape}", param_hint="--normal"
            )
        return beats, None
    return read_beats(path, "train", option="--normal")


_RULES = ("target_far", "contamination", "k_std", "robust_k", "fixed", "best")


@click.command()
@click.argument("bundle", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--normal",
    "beats_file",
    required=True,
    help="Beats to calibrate on: 'training' (the model's own training beats, scored leave-one-out), "
    "'ecg5000' (its training split), .npy (all normal), or a labelled .npz (X, y) / UCR .tsv/.csv "
    "(label 1 = normal; other labels are used by --best only).",
)
@click.option("--target-far", type=float, help="Flag at most this share of the normal beats (e.g. 0.01).")
@click.option("--contamination", type=float, help="Flag this share of the normal beats (percentile rule).")
@click.option("--k-std", type=float, help="mean - K * std of the normal scores.")
@click.option("--robust-k", type=float, help="median - K * 1.4826 * MAD of the normal scores.")
@click.option("--fixed", type=float, help="Use this score threshold as is (an error threshold E is score -E).")
@click.option("--best", type=click.Choice(["f1", "youden"]), help="Best F1 or Youden's J on a labelled file.")
def calibrate(bundle: Path, beats_file: str, **rules) -> None:
    """Set the threshold of BUNDLE from beats, by exactly one rule; rewrites bundle.json and the graphs."""
    from ecgedge import calibration
    from ecgedge.export import set_bundle_threshold
    from ecgedge.runtime import BundleError, load_scorer

    chosen = {name: value for name, value in rules.items() if value is not None}
    if len(chosen) != 1:
        options = ", ".join("--" + name.replace("_", "-") for name in _RULES)
        raise click.UsageError(f"give exactly one of {options}")
    ((rule, value),) = chosen.items()
    X, y = (None, None) if beats_file == "training" else _read_calibration_beats(beats_file)
    if rule == "best" and y is None:
        raise click.BadParameter("--best needs labelled beats (.npz, .tsv or .csv)", param_hint="--normal")
    try:
        scorer = load_scorer(bundle, "onnxruntime", "fp32")
        scores = scorer.bundle.training_scores() if X is None else scorer.score_samples(X)
        normal_scores = scores if y is None else scores[y == 1]
        if rule == "fixed":
            threshold = value
        elif rule == "best":
            best = calibration.best_f1_threshold if value == "f1" else calibration.youden_threshold
            threshold = best(scores, y != 1)
        else:
            pick = {
                "target_far": calibration.false_alarm_threshold,
                "contamination": calibration.contamination_threshold,
                "k_std": calibration.mean_std_threshold,
                "robust_k": calibration.robust_threshold,
            }[rule]
            threshold = pick(normal_scores, value)
        old = scorer.offset_
        updated = set_bundle_threshold(bundle, threshold, {"method": rule, "value": value, "beats": beats_file})
    except (BundleError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    far = float(np.mean(normal_scores < updated.threshold)) if len(normal_scores) else float("nan")
    click.echo(
        f"threshold {old:.6g} -> {updated.threshold:.6g} ({rule}={value}); "
        f"flags {far:.2%} of the {len(normal_scores)} normal beats"
    )


COMMANDS = (export, calibrate)
