"""Load-time checks of a bundle's model: its interface, its threshold and one scored test beat.

:func:`ecgedge.runtime.load_scorer` runs these after the manifest and every
file's SHA-256 have been checked (:mod:`ecgedge.runtime.bundle`), so a bundle
whose parts do not fit together is refused when it is loaded, with a
:class:`BundleError` naming the problem, instead of failing at the first
patient's beat.
"""

from __future__ import annotations

import json

import numpy as np

from ecgedge.beatformat import BeatFormat
from ecgedge.runtime.bundle import Bundle, BundleError
from ecgedge.runtime.scorer import check_beats

FLOAT_TENSOR = "tensor(float)"
#: Prefix of the ``metadata_props`` keys with which the exporter describes each graph.
METADATA_PREFIX = "ecgedge."
#: How far outside the training scores' range, in multiples of its width, a threshold may lie.
THRESHOLD_MARGIN = 10.0


def check_graph_io(graph: str, inputs: list, outputs: list, bundle: Bundle, metadata: dict[str, str]) -> None:
    """Check an ONNX graph's interface and self-description against the manifest.

    The graph must take exactly one float32 input named ``io.input`` of shape
    (batch, ``beat.length``) and give a float32 output named ``io.score`` of
    shape (batch,); other outputs are allowed and ignored. When the manifest
    has a ``model_id``, the graph's ``ecgedge.model_id`` metadata must be
    that id and its ``ecgedge.beat_format`` the manifest's ``beat`` (a graph
    from another bundle, or a manifest whose beat format was edited, is
    refused).

    Parameters
    ----------
    graph : str
        The graph's file, for messages.
    inputs, outputs : list
        ONNX Runtime ``NodeArg`` objects (``session.get_inputs()`` /
        ``get_outputs()``): anything with ``name``, ``shape`` and ``type``.
    bundle : Bundle
        The bundle the graph comes from.
    metadata : dict of str to str
        The graph's ``metadata_props``.

    Raises
    ------
    BundleError
        Naming the input, output or description that does not fit.
    """
    _check_description(graph, metadata, bundle.manifest)
    io, length = bundle.manifest["io"], bundle.beat_format.length
    names = [arg.name for arg in inputs]
    if names != [io["input"]]:
        raise BundleError(f"{graph} takes inputs {names}, but the manifest's io.input is {io['input']!r}")
    beats = inputs[0]
    if beats.type != FLOAT_TENSOR or len(beats.shape) != 2:
        raise BundleError(
            f"{graph}: input {beats.name!r} is {beats.type} of shape {beats.shape}, "
            f"expected float32 of shape (batch, {length})"
        )
    if beats.shape[1] != length:
        raise BundleError(
            f"{graph} takes beats of {beats.shape[1]} samples (input {beats.name!r} shape "
            f"{beats.shape}), but the manifest's beat.length is {length}"
        )
    found = {arg.name: arg for arg in outputs}
    score = found.get(io["score"])
    if score is None:
        raise BundleError(
            f"{graph} has no output {io['score']!r} (the manifest's io.score); its outputs are {sorted(found)}"
        )
    if score.type != FLOAT_TENSOR or len(score.shape) != 1:
        raise BundleError(
            f"{graph}: output {score.name!r} is {score.type} of shape {score.shape}, expected float32 of shape (batch,)"
        )


def _check_description(graph: str, metadata: dict[str, str], manifest: dict) -> None:
    if "model_id" not in manifest:
        return
    found = metadata.get(METADATA_PREFIX + "model_id")
    if found != manifest["model_id"]:
        raise BundleError(
            f"{graph} describes model {found!r}, but the manifest's model_id is "
            f"{manifest['model_id']!r}: the graph belongs to another bundle"
        )
    text = metadata.get(METADATA_PREFIX + "beat_format")
    try:
        beat = json.loads(text) if text is not None else None
    except ValueError:
        beat = text
    if beat != manifest["beat"]:
        raise BundleError(
            f"{graph} was exported for beats {text}, but the manifest's beat is "
            f"{json.dumps(manifest['beat'], sort_keys=True)}"
        )


def check_threshold(bundle: Bundle) -> None:
    """Refuse a threshold far outside the scores of the bundle's own training beats.

    The threshold must lie within the training scores' range widened by
    :data:`THRESHOLD_MARGIN` times its width on each side; beyond that it
    would flag every beat or none. Bundles without ``training_scores.npy``
    are only held to the manifest's absolute bound.

    Raises
    ------
    BundleError
        Naming the threshold and the range it should lie in.
    """
    if "training_scores" not in bundle.manifest["artifacts"]:
        return
    scores = bundle.training_scores()
    lo, hi = float(scores.min()), float(scores.max())
    margin = THRESHOLD_MARGIN * ((hi - lo) or max(abs(hi), 1.0))
    if not lo - margin <= bundle.threshold <= hi + margin:
        raise BundleError(
            f"{bundle.path}: threshold {bundle.threshold!r} is far outside the training scores "
            f"({lo:.4g} to {hi:.4g}; accepted {lo - margin:.4g} to {hi + margin:.4g}): it would flag every beat or none"
        )


def probe_beats(beat_format: BeatFormat) -> np.ndarray:
    """Two synthetic beats of the bundle's format: R where the format puts it, and R mid-window.

    Each is a narrow QRS spike of the format's polarity followed by a broad
    T wave; no data file is needed on the device.

    Returns
    -------
    ndarray of shape (2, beat_format.length), float32
    """
    n = beat_format.length
    t = np.arange(n, dtype=np.float64)
    width = max(n / 70.0, 0.5)
    r_at = beat_format.before_r / (beat_format.before_r + beat_format.after_r) * (n - 1)
    beats = []
    for r in (r_at, (n - 1) / 2.0):
        qrs = np.exp(-0.5 * ((t - r) / width) ** 2)
        wave = np.exp(-0.5 * ((t - r - 0.3 * n) / (4 * width)) ** 2)
        beats.append(beat_format.r_polarity * (qrs + 0.3 * wave))
    return np.asarray(beats, dtype=np.float32)


def check_scores(scorer) -> None:
    """Score :func:`probe_beats` and refuse a model whose scores are not finite or ignore the beat.

    Parameters
    ----------
    scorer : Scorer
        A freshly loaded scorer.

    Raises
    ------
    BundleError
        When scoring fails, or gives a non-finite score, a wrong shape, or
        the same score for two different beats (a constant model).
    """
    beats = probe_beats(scorer.beat_format)
    where = f"{scorer.bundle.path} ({scorer.backend} {scorer.precision})"
    try:  # the backend's own scoring step, under any public name the Scorer gives it
        scores = np.asarray(scorer._score(check_beats(beats, scorer.beat_format.length)), dtype=np.float64)
    except Exception as err:  # noqa: BLE001 - any failure here means the model cannot score beats
        raise BundleError(f"{where} failed to score a test beat: {one_line(err)}") from None
    if scores.shape != (len(beats),):
        raise BundleError(f"{where} gave scores of shape {scores.shape} for {len(beats)} test beats")
    if not np.isfinite(scores).all():
        raise BundleError(f"{where} gave a non-finite score {scores.tolist()} to a test beat")
    if scores[0] == scores[1]:
        raise BundleError(
            f"{where} gives the same score {scores[0]:.6g} to two different test beats: the model ignores its input"
        )


def one_line(err: BaseException) -> str:
    """An exception's message on one line (ONNX Runtime's span several)."""
    return " ".join(str(err).split()) or type(err).__name__


def validate_scorer(scorer) -> None:
    """All load-time checks of a scorer's bundle beyond the manifest: threshold, then a scored test beat.

    Raises
    ------
    BundleError
        From :func:`check_threshold` or :func:`check_scores`.
    """
    check_threshold(scorer.bundle)
    check_scores(scorer)
