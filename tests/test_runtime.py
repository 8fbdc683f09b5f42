"""The bedside runtime: one Scorer over a verified bundle, without torch or scikit-learn."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ecgedge.export import export_bundle
from ecgedge.runtime import BundleError, Scorer, add_artifact, load_scorer, read_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, small_detector):
    return export_bundle(small_detector, tmp_path_factory.mktemp("bundle"))


@pytest.fixture()
def copy(bundle, tmp_path):
    """A throw-away copy of the bundle to damage."""
    return shutil.copytree(bundle, tmp_path / "bundle")


def test_runtime_imports_neither_torch_nor_sklearn(bundle):
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        import ecgedge
        from ecgedge.runtime import load_scorer
        from ecgedge.calibration import PatientCalibrator, false_alarm_threshold
        from ecgedge.beatformat import BeatFormat
        for precision in ("fp32", "int8", "fp16"):
            scorer = load_scorer({str(bundle)!r}, precision=precision, threads=1)
            flags = scorer.predict(np.zeros((3, scorer.beat_format.length)))
        PatientCalibrator(n_beats=3).update(scorer.score_samples(np.ones((3, scorer.beat_format.length))))
        ecgedge.__version__
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"torch", "sklearn"}})
        print(",".join(heavy) or "clean")
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "clean"


@pytest.mark.parametrize(("backend", "precision"), [("onnxruntime", "fp32"), ("torch", "fp32")])
def test_scorer_gives_the_detector_numbers(bundle, small_detector, test_subset, backend, precision):
    X = test_subset[0]
    scorer = load_scorer(bundle, backend=backend, precision=precision, threads=1)
    assert isinstance(scorer, Scorer) and scorer.backend == backend
    np.testing.assert_allclose(scorer.score_samples(X), small_detector.score_samples(X), rtol=1e-4)
    np.testing.assert_allclose(scorer.decision_function(X), small_detector.decision_function(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(scorer.predict(X), small_detector.predict(X))
    assert scorer.offset_ == small_detector.offset_
    assert scorer.beat_format.length == small_detector.n_features_in_
    assert scorer.bundle.manifest["files"]


def test_offset_can_be_replaced_per_scorer(bundle, test_subset):
    X = test_subset[0]
    with load_scorer(bundle, precision="int8") as scorer:
        scorer.offset_ = float(np.median(scorer.score_samples(X)))
        assert np.mean(scorer.predict(X) == -1) == pytest.approx(0.5, abs=0.01)
        assert load_scorer(bundle).offset_ == read_bundle(bundle).threshold
        with pytest.raises(ValueError, match="finite"):
            scorer.offset_ = float("nan")
    with pytest.raises(RuntimeError, match="closed"):
        scorer.score_samples(X)


@pytest.mark.parametrize(
    ("beats", "message"),
    [
        (np.zeros(140), "2-D.*reshape"),
        (np.zeros((2, 139)), "140 samples"),
        (np.zeros((0, 140)), "empty"),
        (np.full((2, 140), np.nan), "NaN or infinite"),
        ([["a"] * 140], "numeric"),
    ],
)
def test_bad_beats_are_refused_clearly(bundle, beats, message):
    with pytest.raises(ValueError, match=message):
        load_scorer(bundle).score_samples(beats)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "tflite"}, "backend must be one of"),
        ({"precision": "int4"}, "precision must be one of"),
        ({"threads": 0}, "threads must be"),
        ({"backend": "torch", "precision": "int8"}, "FP32 detector only"),
    ],
)
def test_bad_load_arguments_are_refused(bundle, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_scorer(bundle, **kwargs)


def test_tensorrt_backend_needs_an_engine(bundle):
    with pytest.raises(BundleError, match="no 'engine' file"):
        load_scorer(bundle, backend="tensorrt")


@pytest.mark.parametrize("name", ["model.onnx", "model.int8.onnx", "detector.npz", "build_engine.sh"])
def test_truncated_file_is_refused(copy, name):
    path = copy / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BundleError, match=f"{name} failed its SHA-256 check: the file is truncated or was altered"):
        load_scorer(copy)


def test_altered_byte_is_refused(copy):
    path = copy / "model.fp16.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.fp16.onnx failed its SHA-256 check"):
        load_scorer(copy, precision="fp16")


def test_missing_file_and_broken_manifest_are_refused(copy, tmp_path):
    (copy / "model.int8.onnx").unlink()
    with pytest.raises(BundleError, match="model.int8.onnx is missing"):
        read_bundle(copy)
    manifest = copy / "bundle.json"
    text = manifest.read_text()
    manifest.write_text(text[: len(text) // 2])
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(copy)
    manifest.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BundleError, match="not an ecgedge bundle"):
        read_bundle(copy)
    manifest.write_text(text.replace('"format_version": 1', '"format_version": 99'))
    with pytest.raises(BundleError, match="format version 99"):
        read_bundle(copy)
    with pytest.raises(BundleError, match="bundle.json is missing"):
        read_bundle(tmp_path / "nowhere")


def test_added_artifact_is_listed_and_verified(copy):
    (copy / "model.engine").write_bytes(b"serialized engine")
    updated = add_artifact(copy, "engine", "model.engine", precision="fp16", max_batch=64)
    assert updated.file("engine").read_bytes() == b"serialized engine"
    assert updated.manifest["engine"] == {"precision": "fp16", "max_batch": 64}
    (copy / "model.engine").write_bytes(b"another engine")
    with pytest.raises(BundleError, match="model.engine failed its SHA-256 check"):
        read_bundle(copy)
