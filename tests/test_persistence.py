"""Model files: round trip, truncated or altered files refused, and no import circle with the estimator."""

from __future__ import annotations

import ast
import importlib.util
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ecgedge
from ecgedge.persistence import ModelFileError


@pytest.fixture(scope="module")
def model_file(small_detector, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "detector.npz"
    small_detector.save(path)
    return path


def test_roundtrip_gives_identical_scores(small_detector, model_file, test_subset):
    loaded = ecgedge.load(model_file)
    X = test_subset[0]
    np.testing.assert_array_equal(loaded.score_samples(X), small_detector.score_samples(X))
    assert loaded.offset_ == small_detector.offset_
    assert loaded.get_params() == small_detector.get_params()
    assert loaded.loss_curve_ == small_detector.loss_curve_


def test_file_holds_no_pickle(model_file):
    with np.load(model_file, allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)
        header = json.loads(archive["header"].tobytes())
    assert header["versions"]["ecgedge"] == ecgedge.__version__
    assert len(header["sha256"]) == 64


def test_truncated_file_is_refused(model_file, tmp_path):
    data = model_file.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 7):
        truncated = tmp_path / f"cut{cut}.npz"
        truncated.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="truncated or corrupt"):
            ecgedge.load(truncated)


def test_altered_weights_are_refused(model_file, tmp_path):
    altered = tmp_path / "altered.npz"
    with zipfile.ZipFile(model_file) as src, zipfile.ZipFile(altered, "w") as dst:
        for item in src.infolist():
            payload = src.read(item)
            if item.filename.startswith("weight/") and "to_sample.bias" in item.filename:
                payload = payload[:-4] + np.float32(123.0).tobytes()
            dst.writestr(item, payload)
    with pytest.raises(ModelFileError, match="checksum"):
        ecgedge.load(altered)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        ecgedge.load(tmp_path / "nope.npz")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, header=np.frombuffer(b'{"format": "other"}', dtype=np.uint8))
    with pytest.raises(ModelFileError, match="not an ecgedge detector"):
        ecgedge.load(foreign)


def ecgedge_imports(module: str) -> set[str]:
    """Every ``ecgedge`` module a module's source imports, lazy imports inside functions included."""
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ecgedge"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ecgedge"))
    return found


def test_no_import_circle_between_the_estimator_and_its_files():
    # persistence.load builds the estimator, so the estimator must not import persistence back
    assert "ecgedge.persistence" not in ecgedge_imports("ecgedge.detector")
    assert not ecgedge_imports("ecgedge.model_file") & {"ecgedge.detector", "ecgedge.persistence"}
