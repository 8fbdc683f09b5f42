"""The bedside scoring path: load a bundle, score beats, flag anomalies.

Imports neither torch nor scikit-learn (only the ``"torch"`` backend does,
and only when chosen).

Examples
--------
>>> from ecgedge.runtime import load_scorer
>>> scorer = load_scorer("bundle/", precision="int8", threads=1)  # doctest: +SKIP
>>> scorer.predict(beats)  # +1 normal, -1 anomaly  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ecgedge.runtime.bundle import PRECISIONS, Bundle, BundleError, add_artifact, read_bundle, sign_bundle
from ecgedge.runtime.scorer import Scorer, check_beats
from ecgedge.runtime.signing import trusted_key
from ecgedge.runtime.validate import validate_scorer

__all__ = [
    "Bundle",
    "BundleError",
    "Scorer",
    "add_artifact",
    "check_beats",
    "load_scorer",
    "read_bundle",
    "sign_bundle",
]

BACKENDS = ("onnxruntime", "tensorrt", "torch")


def load_scorer(
    bundle_dir: str | Path,
    backend: str = "onnxruntime",
    precision: str | None = None,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    trust_key: str | Path | None = None,
) -> Scorer:
    """Load a verified bundle and return a scorer for one backend and precision.

    Parameters
    ----------
    bundle_dir : str or Path
        The bundle directory written by ``ecgedge export``.
    backend : {"onnxruntime", "tensorrt", "torch"}, default="onnxruntime"
        ``"tensorrt"`` runs the bundle's engine (its precision is the one it
        was built with); ``"torch"`` runs the detector eagerly in FP32 and
        imports torch.
    precision : {"fp32", "int8", "fp16"} or None, default=None
        Which ONNX graph the ``"onnxruntime"`` backend runs (``None``:
        FP32). The torch backend runs FP32 only; the TensorRT backend runs
        its engine's precision (``None`` accepts it, anything else must
        match it).
    threads : int or None, default=None
        Intra-op CPU threads (onnxruntime) or ``torch.set_num_threads``.
    providers : sequence of str or None, default=None
        ONNX Runtime execution providers (default: CPU).
    trust_key : str or Path or None, default=None
        Key file the bundle must be signed with (``bundle.sig``,
        :mod:`ecgedge.runtime.signing`); ``None`` uses the file named by the
        ``ECGEDGE_TRUST_KEY`` environment variable, and checks no signature
        when that is unset.

    Returns
    -------
    Scorer
        A scorer that has scored two test beats (finite and different scores).

    Raises
    ------
    BundleError
        When the bundle is missing or malformed (any manifest field of the
        wrong type or out of range), names a file outside the bundle or an
        artifact not listed in ``files``, any of its files fails its SHA-256
        check (all files are checked, not only the one loaded), the graph
        cannot be loaded or its input/output do not fit the beat format, the
        threshold lies far outside the training scores, or the model does not
        give finite, input-dependent scores to test beats
        (:mod:`ecgedge.runtime.validate`); with a trusted key, when the key
        file is unreadable or the bundle is not signed with it.
    ValueError
        For an unknown backend or precision, or a combination the backend
        does not run.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    if backend == "torch" and precision not in (None, "fp32"):
        raise ValueError(f"the torch backend runs the FP32 detector only, got precision={precision!r}")
    bundle = read_bundle(bundle_dir, trust_key=trusted_key(trust_key))
    scorer = _scorer(bundle, backend, precision, threads, providers)
    validate_scorer(scorer)
    return scorer


def _scorer(
    bundle: Bundle, backend: str, precision: str | None, threads: int | None, providers: Sequence[str] | None
) -> Scorer:
    if backend == "onnxruntime":
        from ecgedge.runtime.onnxruntime_backend import OnnxRuntimeScorer

        return OnnxRuntimeScorer(bundle, precision or "fp32", threads, providers)
    if backend == "tensorrt":
        from ecgedge.runtime.tensorrt_backend import TensorRTScorer

        built = bundle.manifest.get("engine", {}).get("precision")
        if precision is not None and built is not None and precision != built:
            raise ValueError(f"the bundle's TensorRT engine runs {built}, not {precision!r}")
        return TensorRTScorer(bundle)
    from ecgedge.runtime.torch_backend import TorchScorer

    return TorchScorer(bundle, threads)
