"""Tampered bundles are refused at load with a BundleError naming the problem (issue 14, findings 3 and 4).

Each test damages a copy of a real exported bundle the way an attacker or a
bad day would, often updating the SHA-256 in ``bundle.json`` too, so that
only the check under test can catch it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from fixtures.bridge_support import tiny_bundle
from onnx import TensorProto, helper

from ecgedge.cli import main
from ecgedge.runtime import BundleError, load_scorer, read_bundle
from ecgedge.runtime.bundle import sign_bundle, write_manifest
from ecgedge.runtime.manifest import MAX_MANIFEST_BYTES
from ecgedge.runtime.onnxruntime_backend import OnnxRuntimeScorer
from ecgedge.runtime.signing import KEY_ENV, SIGNATURE
from ecgedge.runtime.validate import probe_beats


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory)


@pytest.fixture()
def copy(bundle, tmp_path) -> Path:
    """A throw-away copy of the bundle to tamper with."""
    return Path(shutil.copytree(bundle, tmp_path / "bundle"))


def manifest_of(path: Path) -> dict:
    return json.loads((path / "bundle.json").read_text())


def write_raw(path: Path, manifest: dict) -> None:
    """Write bundle.json as given: digests are not recomputed."""
    (path / "bundle.json").write_text(json.dumps(manifest))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refused(path: Path, message: str, **kwargs) -> str:
    """Load the bundle, expect a BundleError matching ``message``, and return the error text."""
    with pytest.raises(BundleError, match=message) as info:
        load_scorer(path, **kwargs)
    text = str(info.value)
    assert "\n" not in text
    return text


# --- Finding 3: every file a bundle uses is inside it and hashed -------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("evil.onnx", r"artifacts\['fp32'\] = 'evil.onnx' is not listed in 'files'"),
        ("/tmp/abs/path.onnx", r"artifacts\['fp32'\] = '/tmp/abs/path.onnx' is not a plain relative path"),
        ("../../outside.onnx", r"artifacts\['fp32'\] = '../../outside.onnx' leaves the bundle directory"),
        ("sub/../model.onnx", r"artifacts\['fp32'\] = 'sub/../model.onnx' leaves the bundle directory"),
        ("model.onnx\\..\\x", r"is not a plain relative path"),
        ("", r"artifacts\['fp32'\] must name a file"),
        (7, r"artifacts\['fp32'\] must name a file, got 7"),
    ],
)
def test_artifact_outside_files_is_refused(copy, tmp_path, name, message):
    # the file exists (a constant-score model, say): only its absence from 'files' can stop it
    evil = copy / "evil.onnx"
    shutil.copyfile(copy / "model.onnx", evil)
    manifest = manifest_of(copy)
    manifest["artifacts"]["fp32"] = name
    write_raw(copy, manifest)
    refused(copy, message)
    with pytest.raises(BundleError, match=message):
        read_bundle(copy, verify=False)  # refused from the manifest alone


@pytest.mark.parametrize(
    "name",
    ["../../../../etc/passwd", "../outside.bin", "/etc/passwd", "./model.onnx", "a//b", "bundle.json", "bundle.sig"],
)
def test_files_entry_outside_the_bundle_is_refused_before_it_is_read(copy, tmp_path, name):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"root:x:0:0")
    manifest = manifest_of(copy)
    # the digest is right for the outside file: only the path check can refuse it
    manifest["files"][name] = sha256(outside)
    write_raw(copy, manifest)
    message = refused(copy, re.escape(f"files[{name!r}]"))
    assert "leaves the bundle" in message or "not a plain relative path" in message or "digests cannot cover" in message


def test_symlink_leading_out_of_the_bundle_is_refused(copy, tmp_path):
    # an identical graph outside the bundle, so its SHA-256 matches: only the link's target gives it away
    outside = tmp_path / "elsewhere" / "model.onnx"
    outside.parent.mkdir()
    shutil.copyfile(copy / "model.onnx", outside)
    (copy / "model.onnx").unlink()
    (copy / "model.onnx").symlink_to(outside)
    refused(copy, r"model.onnx leads outside the bundle directory \(to .*elsewhere/model.onnx\)")


def test_symlinked_directory_and_manifest_out_of_the_bundle_are_refused(copy, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copyfile(copy / "model.onnx", outside / "model.onnx")
    (copy / "sub").symlink_to(outside, target_is_directory=True)
    manifest = manifest_of(copy)
    manifest["artifacts"]["fp32"] = "sub/model.onnx"
    manifest["files"]["sub/model.onnx"] = sha256(outside / "model.onnx")
    write_raw(copy, manifest)
    refused(copy, r"sub/model.onnx leads outside the bundle directory")
    (outside / "bundle.json").write_text(json.dumps(manifest))
    (copy / "bundle.json").unlink()
    (copy / "bundle.json").symlink_to(outside / "bundle.json")
    refused(copy, r"bundle.json leads outside the bundle directory")


def test_listed_fifo_is_refused_without_opening_it(copy):
    os.mkfifo(copy / "pipe")  # opening it for reading would block forever
    manifest = manifest_of(copy)
    manifest["files"]["pipe"] = "0" * 64
    write_raw(copy, manifest)
    refused(copy, r"bundle file .*pipe is not a regular file")


def test_graph_swapped_after_verification_is_refused(copy):
    bundle = read_bundle(copy)  # every file verified here ...
    graph = copy / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0x01
    graph.write_bytes(bytes(data))  # ... then the graph changes before the session reads it
    with pytest.raises(BundleError, match=r"model.onnx failed its SHA-256 check"):
        OnnxRuntimeScorer(bundle, "fp32")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"model.onnx": "abc"}, r"files\['model.onnx'\] must be a lowercase hex SHA-256, got 'abc'"),
        ({"model.onnx": None}, r"files\['model.onnx'\] must be a lowercase hex SHA-256, got None"),
        ({}, r"'files' lists no file"),
    ],
)
def test_files_must_hold_sha256_digests(copy, files, message):
    manifest = manifest_of(copy)
    manifest["files"] = files if not files else {**manifest["files"], **files}
    write_raw(copy, manifest)
    refused(copy, message)


# --- Finding 4: the whole bundle is validated at load ---------------------------------------------------------


def tamper(copy: Path, edit) -> None:
    """Apply ``edit`` to the manifest and rewrite it with fresh digests (an attacker who updates hashes)."""
    manifest = manifest_of(copy)
    edit(manifest)
    write_manifest(copy, manifest)


def set_key(section: str | None, key: str, value):
    def edit(manifest):
        (manifest[section] if section else manifest)[key] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (set_key(None, "threshold", 1e30), r"threshold 1e\+30 is beyond"),
        (set_key(None, "threshold", True), r"non-finite or non-numeric threshold True"),
        (set_key(None, "threshold", "-12.5"), r"non-finite or non-numeric threshold '-12.5'"),
        (set_key(None, "threshold", None), r"non-finite or non-numeric threshold None"),
        (set_key(None, "threshold", float("nan")), r"non-finite or non-numeric threshold nan"),
        (set_key(None, "threshold", 5000.0), r"threshold 5000.0 is far outside the training scores"),
        (set_key("beat", "before_r", float("nan")), r"beat.before_r must be a finite number, got nan"),
        (set_key("beat", "before_r", 3.0), r"beat.before_r = 3.0 is outside \[0, 1\]"),
        (set_key("beat", "after_r", 0), r"beat.after_r = 0 is outside \(0, 2\]"),
        (set_key("beat", "length", 0), r"beat.length must be an integer in \[1, 10000\], got 0"),
        (set_key("beat", "length", 140.0), r"beat.length must be an integer in \[1, 10000\], got 140.0"),
        (set_key("beat", "length", True), r"beat.length must be an integer .* got True"),
        (set_key("beat", "source_fs", -250), r"beat.source_fs = -250 is outside"),
        (set_key("beat", "r_polarity", 0), r"beat.r_polarity must be -1 or 1, got 0"),
        (set_key(None, "beat", "140 samples"), r"'beat' must be an object, got str"),
        (set_key(None, "artifacts", ["model.onnx"]), r"'artifacts' must be an object, got list"),
        (set_key(None, "artifacts", {"training_scores": "training_scores.npy"}), r"'artifacts' names no model"),
        (set_key(None, "io", None), r"'io' must be an object, got NoneType"),
        (set_key("io", "input", 3), r"io.input must be a non-empty string, got 3"),
        (set_key("io", "dtype", "float64"), r"io.dtype must be 'float32'"),
        (set_key("io", "input_shape", ["batch", 187]), r"io.input_shape must be \['batch', 140\]"),
        (set_key("detector", "n_features_in", 187), r"detector.n_features_in = 187 but beat.length = 140"),
        (set_key(None, "format_version", True), r"format version True, expected 1"),
        (set_key(None, "model_id", "not a digest"), r"model_id must be a lowercase hex SHA-256"),
        (set_key("score", "higher_is_normal", False), r"score.higher_is_normal is False; this runtime flags"),
        (set_key(None, "engine", []), r"'engine' must be an object, got list"),
        (lambda m: m.pop("threshold"), r"lacks the required key 'threshold'"),
        (lambda m: m.pop("io"), r"lacks the required key 'io'"),
    ],
)
def test_manifest_fields_of_the_wrong_type_or_range_are_named(copy, edit, message):
    tamper(copy, edit)
    refused(copy, message)


def test_beat_length_against_the_graph(copy):
    def longer(manifest):
        manifest["beat"]["length"] = manifest["detector"]["n_features_in"] = 187
        manifest["io"]["input_shape"] = ["batch", 187]

    # the graph's own description gives it away first ...
    tamper(copy, longer)
    refused(
        copy,
        r"model.onnx was exported for beats .*\"length\": 140.*, "
        r"but the manifest's beat is .*\"length\": 187",
    )
    # ... and without it (a bundle without model_id), its input shape does
    tamper(copy, lambda manifest: manifest.pop("model_id"))
    refused(
        copy,
        r"model.onnx takes beats of 140 samples \(input 'beats' shape \['batch', 140\]\), "
        r"but the manifest's beat.length is 187",
    )


def test_edited_beat_window_and_foreign_graph_are_refused(copy):
    tamper(copy, set_key("beat", "before_r", 0.5))
    refused(copy, r"model.onnx was exported for beats .*\"before_r\": 0.025.* but the manifest's beat is .*0.5")
    tamper(copy, set_key(None, "model_id", "0" * 64))
    refused(copy, r"model.onnx describes model '[0-9a-f]{64}', but the manifest's model_id is '0{64}'")


def rewrite_graph(copy: Path, name: str, edit) -> None:
    model = onnx.load(str(copy / name))
    edit(model.graph)
    onnx.save(model, str(copy / name))
    write_manifest(copy, manifest_of(copy))


def rename(graph, old: str, new: str, inputs: bool) -> None:
    for value in graph.input if inputs else graph.output:
        if value.name == old:
            value.name = new
    for node in graph.node:
        names = node.input if inputs else node.output
        for i, found in enumerate(names):
            if found == old:
                names[i] = new


def test_renamed_input_and_missing_score_output_are_refused(copy):
    rewrite_graph(copy, "model.onnx", lambda graph: rename(graph, "beats", "x", inputs=True))
    refused(copy, r"model.onnx takes inputs \['x'\], but the manifest's io.input is 'beats'")
    rewrite_graph(copy, "model.int8.onnx", lambda graph: rename(graph, "score", "out", inputs=False))
    refused(
        copy,
        r"model.int8.onnx has no output 'score' \(the manifest's io.score\); its outputs are \['out'\]",
        precision="int8",
    )


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unloadable_graph_with_updated_digest_is_refused(copy, damage):
    graph = copy / "model.onnx"
    data = graph.read_bytes()
    graph.write_bytes(b"not an onnx graph" * 100 if damage == "garbage" else data[: len(data) // 3])
    write_manifest(copy, manifest_of(copy))
    refused(copy, r"ONNX Runtime cannot load .*model.onnx: .*INVALID_PROTOBUF")


def constant_graph(length: int, value: float) -> onnx.ModelProto:
    """A graph of the bundle's interface whose score ignores the beat: 0 * mean(beats) + value."""
    beats = helper.make_tensor_value_info("beats", TensorProto.FLOAT, ["batch", length])
    score = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])
    nodes = [
        helper.make_node("ReduceMean", ["beats"], ["mean"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "value"], ["score"]),
    ]
    constants = [
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("value", TensorProto.FLOAT, [], [value]),
    ]
    graph = helper.make_graph(nodes, "constant", [beats], [score], constants)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-5.0, r"gives the same score -5 to two different test beats: the model ignores its input"),
        (float("nan"), r"gave a non-finite score \[nan, nan\] to a test beat"),
    ],
)
def test_model_that_ignores_its_beats_or_gives_nan_is_refused(copy, value, message):
    onnx.save(constant_graph(140, value), str(copy / "model.onnx"))
    tamper(copy, lambda manifest: manifest.pop("model_id"))
    refused(copy, message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"format": "ecgedge-bundle", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", r"nested too deeply"),
        (b"[" * 100_000, r"nested too deeply|not valid JSON"),
        (b'{"format": "ecgedge-bundle", "threshold": -1, "threshold": 1e30}', r"duplicate key 'threshold'"),
        (b"[1, 2]", r"is not an ecgedge bundle manifest"),
        (b"\xff\xfe{", r"is not valid JSON"),
        (b'{"format": "ecgedge-bundle", "threshold": ' + b"9" * 5000 + b"}", r"not valid JSON"),
    ],
)
def test_malformed_manifest_text_is_refused(copy, text, message):
    (copy / "bundle.json").write_bytes(text)
    refused(copy, message)


def test_oversized_manifest_is_refused_unparsed(copy):
    manifest = manifest_of(copy)
    manifest["padding"] = "x" * MAX_MANIFEST_BYTES
    write_raw(copy, manifest)
    refused(copy, rf"bundle.json is larger than {MAX_MANIFEST_BYTES} bytes")


def test_training_scores_that_are_not_scores_are_refused(copy):
    np.save(copy / "training_scores.npy", np.array(["a", "b"]))
    write_manifest(copy, manifest_of(copy))
    refused(copy, r"training_scores.npy must hold a non-empty 1-D array of finite scores, got <U1 \(2,\)")


def test_intact_bundle_loads_and_scores_the_probe_beats(bundle):
    scorer = load_scorer(bundle, precision="int8")
    scores = scorer.score_samples(probe_beats(scorer.beat_format))
    assert np.isfinite(scores).all() and scores[0] != scores[1]


def test_bridge_refuses_a_tampered_bundle_at_start_with_one_line(copy):
    shutil.copyfile(copy / "model.onnx", copy / "evil.onnx")
    manifest = manifest_of(copy)
    manifest["artifacts"]["fp32"] = "evil.onnx"
    write_raw(copy, manifest)
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ecgedge.cli import main; main()",
            "bridge",
            "--port",
            "loop://",
            "--bundle",
            str(copy),
            "--duration",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "cannot load bundle" in lines[0] and "artifacts['fp32'] = 'evil.onnx' is not listed in 'files'" in lines[0]
    assert run.stdout == ""


def key_paths(node, prefix=()):
    """Every key path (and list index) in a JSON document, parents first."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        yield (*prefix, key)
        yield from key_paths(value, (*prefix, key))


ODD_VALUES = [None, True, -1, 1e308, "x", [], {}, float("nan")]


def test_any_field_of_any_type_loads_or_gives_a_bundle_error(bundle, tmp_path):
    """Every manifest field replaced by odd values of other types (two each, in turn) or deleted."""
    original = manifest_of(bundle)
    paths = list(key_paths(original))
    assert len(paths) > 50
    outcomes = {"loaded": 0, "refused": 0}
    copy = Path(shutil.copytree(bundle, tmp_path / "bundle"))
    for i, path in enumerate(paths):
        for change in (ODD_VALUES[i % 8], ODD_VALUES[(i + 3) % 8], "delete"):
            manifest = json.loads(json.dumps(original))
            parent = manifest
            for key in path[:-1]:
                parent = parent[key]
            if change == "delete":
                parent.pop(path[-1]) if isinstance(parent, dict) else parent.pop()
            else:
                parent[path[-1]] = change
            write_raw(copy, manifest)
            try:
                load_scorer(copy)
            except BundleError as err:
                assert "\n" not in str(err)
                outcomes["refused"] += 1
            else:
                outcomes["loaded"] += 1
    # fields the runtime does not read (versions, detector parameters, notes) may change freely
    assert outcomes["refused"] > 80 and outcomes["loaded"] > 50


# --- Signed manifests: a key the device trusts -------------------------------------------------------------


@pytest.fixture()
def key_file(tmp_path) -> Path:
    path = tmp_path / "bundle.key"
    path.write_bytes(os.urandom(32))
    return path


def test_signed_bundle_loads_and_a_swapped_model_with_an_updated_digest_does_not(copy, key_file, tmp_path):
    sign_bundle(copy, key_file.read_bytes())
    assert load_scorer(copy, trust_key=key_file).bundle.path == copy
    signature = (copy / SIGNATURE).read_bytes()
    # the attacker swaps the graph, rewrites its digest and puts the old signature back
    onnx.save(constant_graph(140, -5.0), str(copy / "model.onnx"))
    write_manifest(copy, manifest_of(copy))
    assert not (copy / SIGNATURE).exists()  # rewriting the manifest drops the stale signature
    (copy / SIGNATURE).write_bytes(signature)
    refused(copy, r"bundle.sig does not match bundle.json and the trusted key", trust_key=key_file)
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    sign_bundle(copy, other.read_bytes())  # signed, but not with the key the device trusts
    refused(copy, r"bundle.sig does not match", trust_key=key_file)


def test_trusted_key_from_the_environment(copy, key_file, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, str(key_file))
    refused(copy, r"is not signed \(bundle.sig is missing\) and a trusted key is configured")
    sign_bundle(copy, key_file.read_bytes())
    assert load_scorer(copy).bundle.path == copy
    short = tmp_path / "short.key"
    short.write_bytes(b"secret")
    monkeypatch.setenv(KEY_ENV, str(short))
    refused(copy, r"short.key has 6 bytes; a key needs at least 32")
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "missing.key"))
    refused(copy, r"cannot read the trusted key .*missing.key")


def test_bridge_refuses_an_unsigned_bundle_when_a_key_is_trusted(copy, key_file):
    result = CliRunner().invoke(
        main, ["bridge", "--port", "loop://", "--bundle", str(copy), "--duration", "5"], env={KEY_ENV: str(key_file)}
    )
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot load bundle {copy}: {copy} is not signed "
        f"(bundle.sig is missing) and a trusted key is configured"
    ]
