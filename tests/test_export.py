"""Export to a deployment bundle: ONNX graphs, INT8/FP16, bundle.json, TensorRT around the library."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from ecgedge.beatformat import BeatFormat
from ecgedge.cli import main
from ecgedge.export import TensorRTUnavailable, export_bundle
from ecgedge.export import tensorrt as trt_export
from ecgedge.export.bundle import model_id
from ecgedge.export.onnx_graph import graph_description
from ecgedge.runtime import load_scorer, read_bundle

try:
    import tensorrt  # noqa: F401

    HAVE_TENSORRT = True
except ImportError:
    HAVE_TENSORRT = False


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, small_detector):
    return export_bundle(small_detector, tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def test_scores(bundle, small_detector, ecg5000):
    """Scores of all 4500 ECG5000 TEST beats: reference and each precision."""
    X = ecg5000[2]
    scores = {"reference": small_detector.score_samples(X)}
    for precision in ("fp32", "int8", "fp16"):
        scores[precision] = load_scorer(bundle, precision=precision, threads=1).score_samples(X)
    return scores


def test_fp32_graph_matches_score_samples_on_all_test_beats(test_scores):
    ref, fp32 = test_scores["reference"], test_scores["fp32"]
    assert ref.shape == fp32.shape == (4500,)
    assert np.max(np.abs(fp32 - ref) / np.abs(ref)) <= 1e-4


def _auc(ecg5000, scores):
    return roc_auc_score(ecg5000[3] != 1, -scores)


def test_fp16_keeps_auc_and_flags(test_scores, ecg5000, small_detector):
    ref = test_scores["reference"]
    fp16 = test_scores["fp16"]
    assert abs(_auc(ecg5000, fp16) - _auc(ecg5000, ref)) <= 0.002
    assert np.mean((fp16 < small_detector.offset_) == (ref < small_detector.offset_)) >= 0.995


def test_int8_stays_close(test_scores, ecg5000, small_detector):
    # the bounds: ROC AUC within 0.002 of FP32 and >= 99.5 % of flags equal
    ref, int8 = test_scores["reference"], test_scores["int8"]
    assert abs(_auc(ecg5000, int8) - _auc(ecg5000, ref)) <= 0.002
    assert np.mean((int8 < small_detector.offset_) == (ref < small_detector.offset_)) >= 0.995
    assert np.corrcoef(int8, ref)[0, 1] > 0.999


def test_graphs_have_the_expected_operators_and_types(bundle):
    ops = {
        p: {n.op_type for n in onnx.load(bundle / f).graph.node}
        for p, f in {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}.items()
    }
    assert "LSTM" in ops["fp32"]
    assert "DynamicQuantizeLSTM" in ops["int8"] and "LSTM" not in ops["int8"]
    # only the recurrent layers are quantised: the distance to the normal-beat patches stays FP32
    assert not {"DynamicQuantizeMatMul", "MatMulInteger", "DynamicQuantizeLinear"} & ops["int8"]
    # the recurrent layers start from ONNX's default zero state, not from states built at run time
    for graph in (onnx.load(bundle / f).graph for f in ("model.onnx", "model.int8.onnx", "model.fp16.onnx")):
        recurrent = [n for n in graph.node if n.op_type.endswith("LSTM")]
        assert len(recurrent) == 2 and all(not any(n.input[5:7]) for n in recurrent)
    fp16 = onnx.load(bundle / "model.fp16.onnx")
    weights = [i for i in fp16.graph.initializer if i.name.startswith("onnx::LSTM")]
    assert weights and all(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)
    for graph in (fp16.graph, onnx.load(bundle / "model.onnx").graph):
        assert [i.type.tensor_type.elem_type for i in graph.input] == [onnx.TensorProto.FLOAT]
        assert [(o.name, o.type.tensor_type.elem_type) for o in graph.output] == [("score", onnx.TensorProto.FLOAT)]
        assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("precision", ["fp32", "int8", "fp16"])
def test_graphs_output_scores_and_describe_themselves(bundle, ecg5000, precision):
    scorer = load_scorer(bundle, precision=precision)
    for n in (1, 7):
        (score,) = scorer.session.run(None, {"beats": ecg5000[2][:n]})
        assert score.shape == (n,)
    manifest = scorer.bundle.manifest
    assert "anomaly" not in manifest["io"]
    description = graph_description(scorer.bundle.file(precision))
    assert json.loads(description["beat_format"]) == manifest["beat"]
    assert description["model_id"] == manifest["model_id"] == model_id(manifest)
    assert description["version"] == manifest["versions"]["ecgedge"]
    assert description["score"].startswith("higher is more normal")


def test_bundle_json_records_what_the_device_needs(bundle, small_detector):
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["format"] == "ecgedge-bundle"
    assert BeatFormat.from_dict(manifest["beat"]) == BeatFormat(length=small_detector.n_features_in_)
    assert manifest["threshold"] == small_detector.offset_
    assert manifest["score"]["loss"] == small_detector.loss and "score < threshold" in manifest["score"]["definition"]
    assert {"torch", "onnx", "onnxruntime", "ecgedge"} <= set(manifest["versions"])
    assert set(manifest["files"]) == {
        "model.onnx",
        "model.int8.onnx",
        "model.fp16.onnx",
        "detector.npz",
        "training_scores.npy",
        "build_engine.sh",
    }
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == digest
    assert manifest["tensorrt"]["max_batch"] >= manifest["tensorrt"]["opt_batch"] >= 1


def test_export_refuses_bad_settings(small_detector, tmp_path):
    with pytest.raises(ValueError, match="opt_batch"):
        export_bundle(small_detector, tmp_path, opt_batch=64, max_batch=8)
    with pytest.raises(ValueError, match="140 samples"):
        export_bundle(small_detector, tmp_path, beat_format=BeatFormat(length=100))


def test_cli_export_flags_choose_the_graphs(small_detector, tmp_path):
    model = tmp_path / "model.npz"
    small_detector.save(model)
    result = CliRunner().invoke(main, ["export", str(model), "--out", str(tmp_path / "b"), "--no-int8", "--no-fp16"])
    assert result.exit_code == 0, result.output
    assert set(read_bundle(tmp_path / "b").manifest["artifacts"]) == {"fp32", "detector", "training_scores"}
    result = CliRunner().invoke(main, ["export", str(model), "--out", str(tmp_path / "b"), "--no-fp16"])
    assert result.exit_code == 0, result.output
    assert set(read_bundle(tmp_path / "b").manifest["artifacts"]) == {"fp32", "int8", "detector", "training_scores"}
    result = CliRunner().invoke(main, ["export", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "c")])
    assert result.exit_code == 1 and "does not exist" in result.output


# --- TensorRT -----------------------------------------------------------------------------------


def test_engine_plan_follows_the_tensorrt_major_version():
    assert trt_export.engine_plan(10) == trt_export.EnginePlan(source="fp32", strongly_typed=False, fp16_flag=True)
    assert trt_export.engine_plan(11) == trt_export.EnginePlan(source="fp16", strongly_typed=True, fp16_flag=False)
    with pytest.raises(ValueError, match="TensorRT 10 or 11"):
        trt_export.engine_plan(8)


class _Recorder:
    """Stands in for the ``tensorrt`` module, recording the builder calls ecgedge makes."""

    def __init__(self, version: str) -> None:
        self.__version__ = version
        self.calls: list[tuple] = []
        self.NetworkDefinitionCreationFlag = SimpleNamespace(STRONGLY_TYPED=0)
        self.BuilderFlag = SimpleNamespace(FP16="FP16")
        recorder = self

        class Logger:
            WARNING = "warning"

            def __init__(self, severity):
                pass

        class Parser:
            num_errors = 0

            def __init__(self, network, logger):
                pass

            def parse_from_file(self, path):
                recorder.calls.append(("parse", Path(path).name))
                return True

        class Profile:
            def set_shape(self, name, low, opt, high):
                recorder.calls.append(("profile", name, low, opt, high))

        class Config:
            def set_flag(self, flag):
                recorder.calls.append(("flag", flag))

            def add_optimization_profile(self, profile):
                recorder.calls.append(("add_profile",))

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                recorder.calls.append(("network", flags))

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                return b"plan"

        self.Logger, self.OnnxParser, self.Builder = Logger, Parser, Builder


@pytest.mark.parametrize(
    ("version", "graph", "network_flags", "fp16_flag"),
    [("10.3.0", "model.onnx", 0, True), ("11.1.0", "model.fp16.onnx", 1, False)],
)
def test_build_engine_branches_on_the_api_version(tmp_path, version, graph, network_flags, fp16_flag):
    trt = _Recorder(version)
    paths = {"fp32": tmp_path / "model.onnx", "fp16": tmp_path / "model.fp16.onnx"}
    info = trt_export.build_engine(paths, tmp_path / "model.engine", length=140, opt_batch=32, max_batch=512, trt=trt)
    assert ("parse", graph) in trt.calls
    assert ("network", network_flags) in trt.calls
    assert (("flag", "FP16") in trt.calls) is fp16_flag
    assert ("profile", "beats", (1, 140), (32, 140), (512, 140)) in trt.calls
    assert (tmp_path / "model.engine").read_bytes() == b"plan"
    assert info["tensorrt_version"] == version and info["max_batch"] == 512


def test_build_engine_refuses_old_tensorrt(tmp_path):
    with pytest.raises(TensorRTUnavailable, match="too old"):
        trt_export.build_engine({}, tmp_path / "e", length=140, opt_batch=1, max_batch=1, trt=_Recorder("8.6.1"))


@pytest.mark.skipif(HAVE_TENSORRT, reason="tensorrt is installed: the engine is built instead")
def test_trt_export_without_tensorrt_fails_clearly_but_leaves_a_build_script(small_detector, tmp_path):
    with pytest.raises(TensorRTUnavailable, match="build_engine.sh"):
        export_bundle(small_detector, tmp_path, int8=False, fp16=False, trt=True)
    bundle = read_bundle(tmp_path)
    assert set(bundle.manifest["artifacts"]) == {"fp32", "fp16", "detector", "training_scores"}
    assert os.access(tmp_path / "build_engine.sh", os.X_OK)


def _fake_trtexec(path: Path, tag: str) -> Path:
    path.write_text(
        textwrap.dedent(f"""\
        #!/usr/bin/env bash
        echo "&&&& RUNNING TensorRT.trtexec [TensorRT v{tag}] # trtexec $*"
        echo "$*" >> "$(dirname "$0")/trtexec.args"
        for arg in "$@"; do case "$arg" in --saveEngine=*) printf 'engine' > "${{arg#--saveEngine=}}";; esac; done
        """)
    )
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    ("tag", "expected"), [("100300", "--onnx=model.onnx --fp16"), ("110100", "--onnx=model.fp16.onnx --stronglyTyped")]
)
def test_build_engine_script_runs_trtexec_with_the_right_shapes(bundle, tmp_path, tag, expected):
    work = Path(shutil.copytree(bundle, tmp_path / "bundle"))
    trtexec = _fake_trtexec(tmp_path / "trtexec", tag)
    env = {**os.environ, "PYTHON": sys.executable}
    run = subprocess.run([str(work / "build_engine.sh"), str(trtexec)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    args = (tmp_path / "trtexec.args").read_text().splitlines()[-1]
    assert args.startswith(expected)
    assert "--minShapes=beats:1x140 --optShapes=beats:256x140 --maxShapes=beats:4096x140" in args
    updated = read_bundle(work)
    assert updated.file("engine").read_bytes() == b"engine"
    assert updated.manifest["engine"]["tensorrt_version"] == f"{int(tag) // 10000}.{int(tag) // 100 % 100}.0"


def test_build_engine_script_refuses_tensorrt_8(bundle, tmp_path):
    run = subprocess.run(
        [str(bundle / "build_engine.sh"), str(_fake_trtexec(tmp_path / "trtexec", "8601"))],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and "TensorRT 10 or 11" in run.stderr
    assert not (bundle / "model.engine").exists()


@pytest.mark.skipif(not HAVE_TENSORRT, reason="tensorrt is not installed here")
def test_tensorrt_engine_scores_like_onnx(small_detector, tmp_path, ecg5000):
    export_bundle(small_detector, tmp_path, trt=True, opt_batch=8, max_batch=64)
    reference = load_scorer(tmp_path).score_samples(ecg5000[2][:100])
    scores = load_scorer(tmp_path, backend="tensorrt").score_samples(ecg5000[2][:100])
    np.testing.assert_allclose(scores, reference, rtol=2e-2)
