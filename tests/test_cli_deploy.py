"""``ecgedge export`` and the CLI's promises: work is never lost, errors come before work, exit codes."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecgedge.cli import main
from ecgedge.runtime import read_bundle

ECGEDGE = [sys.executable, "-c", "from ecgedge.cli import main; main()"]


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def model(small_detector, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.npz"
    small_detector.save(path)
    return path


@pytest.fixture
def old_bundle(model, tmp_path):
    """A bundle (FP32 only) at tmp_path/bundle, and the digests of its files."""
    out = tmp_path / "bundle"
    result = CliRunner().invoke(main, ["export", str(model), "--out", str(out), "--no-int8", "--no-fp16"])
    assert result.exit_code == 0, result.output
    return out, digests(out)


def test_ctrl_c_during_export_leaves_the_old_bundle_intact(model, old_bundle):
    out, before = old_bundle
    # an ignored SIGINT is inherited, a handler is not: the export hears Ctrl-C even when this test runs
    # with SIGINT ignored (as a background job does)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        export = subprocess.Popen(
            [*ECGEDGE, "export", str(model), "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        deadline = time.monotonic() + 120
        # interrupt once the new bundle has begun: its directory exists, and its graphs take seconds from there
        while not any(out.parent.glob(f".{out.name}.building-*")) and export.poll() is None:
            assert time.monotonic() < deadline, "export never started building"
            time.sleep(0.02)
        export.send_signal(signal.SIGINT)
        _, stderr = export.communicate(timeout=60)
    finally:
        export.kill()
    assert export.returncode != 0, "the export finished before it could be interrupted"
    assert digests(out) == before  # the old bundle, file for file
    read_bundle(out)  # and it still verifies
    assert [p.name for p in out.parent.iterdir()] == [out.name], "a half-built bundle was left behind"


def test_export_replaces_a_bundle_as_a_whole(model, old_bundle):
    out, before = old_bundle
    result = CliRunner().invoke(main, ["export", str(model), "--out", str(out), "--no-fp16"])
    assert result.exit_code == 0, result.output
    assert set(read_bundle(out).manifest["artifacts"]) == {"fp32", "int8", "detector", "training_scores"}
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_export_through_a_link_replaces_the_bundle_it_points_to(model, old_bundle, tmp_path):
    out, _ = old_bundle
    link = tmp_path / "current"
    link.symlink_to(out, target_is_directory=True)
    result = CliRunner().invoke(main, ["export", str(model), "--out", str(link), "--no-fp16"])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and "int8" in read_bundle(out).manifest["artifacts"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "current"]


def test_export_refuses_a_folder_that_is_not_a_bundle(model, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["export", str(model), "--out", str(folder)])
    assert result.exit_code == 2 and "is not a bundle" in result.output
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


def test_export_without_tensorrt_warns_and_exits_0(model, tmp_path):
    pytest.importorskip("onnx")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed: the engine is built, not skipped")
    result = CliRunner().invoke(main, ["export", str(model), "--out", str(tmp_path / "b"), "--trt", "--no-int8"])
    assert result.exit_code == 0, result.output
    assert "Warning: no TensorRT engine" in result.stderr and "build_engine.sh" in result.stderr
    bundle = read_bundle(tmp_path / "b")
    assert set(bundle.manifest["artifacts"]) == {"fp32", "fp16", "detector", "training_scores"}


def test_train_checks_its_output_before_training(tmp_path):
    result = CliRunner().invoke(main, ["train", "--out", str(tmp_path / "nodir" / "m.npz")])
    assert result.exit_code == 2
    assert f"directory {tmp_path / 'nodir'} does not exist" in result.output and "trained" not in result.output


def test_a_failed_save_keeps_the_old_model_file(small_detector, model, tmp_path, monkeypatch):
    import ecgedge.model_file

    path = tmp_path / "m.npz"
    path.write_bytes(model.read_bytes())

    def interrupted(fh, **arrays):
        fh.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(ecgedge.model_file.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        small_detector.save(path)
    assert path.read_bytes() == model.read_bytes() and [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_evaluate_on_an_onnx_graph_says_what_to_give(old_bundle):
    result = CliRunner().invoke(main, ["evaluate", str(old_bundle[0] / "model.onnx")])
    assert result.exit_code == 1 and "is an ONNX graph, not a model file" in result.output
    assert "detector.npz" in result.output and "allow_pickle" not in result.output


def test_demo_with_a_wrong_record_stops_before_any_work(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--record", "100", "--out", str(out)])
    assert result.exit_code == 2 and "cannot read the WFDB record 100" in result.output
    assert not out.exists()


@pytest.mark.parametrize("option", [["--speed", "nan"], ["--speed", "inf"], ["--minutes", "nan"]])
def test_demo_refuses_numbers_that_are_not_finite(option, tmp_path):
    result = CliRunner().invoke(main, ["demo", *option, "--out", str(tmp_path / "demo")])
    assert result.exit_code == 2 and "is not a finite number" in result.output
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize(
    ("command", "blocked", "extra"),
    [
        (["train", "--out", "m.npz"], "torch", "train"),
        (["export", "--out", "b"], "onnx", "export"),
        # found when simulate imports it for a record that is not in format 212, not declared up front
        (["simulate", "--pty", "--record", "RECORD16"], "wfdb", "records"),
    ],
)
def test_a_missing_extra_is_named_in_one_line(command, blocked, extra, monkeypatch, tmp_path):
    elsewhere = tmp_path.parent / f"{tmp_path.name}-record"
    elsewhere.mkdir()
    (elsewhere / "r16.hea").write_text("r16 1 360 3600\nr16.dat 16 200 16 0 0 0 0 MLII\n")
    command = [str(elsewhere / "r16") if part == "RECORD16" else part for part in command]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, blocked, None)  # what an uninstalled package looks like to import
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 3, result.output
    assert result.output.strip().splitlines() == [
        f"Error: ecgedge {command[0]} needs the [{extra}] extra ({blocked} is not installed): "
        f"pip install 'ecgedge[{extra}]'"
    ]
    assert not any(tmp_path.iterdir())
