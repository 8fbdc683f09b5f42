"""The lean install: the bedside path runs on the base dependencies alone.

Tests marked ``lean`` import nothing beyond the base install at module level and
use no fixture of ``conftest.py``: CI also runs them (``pytest -m lean
--noconftest``) in a second environment holding only ``pip install .``. There,
the bundle and the record samples come from ``ECGEDGE_LEAN_DIR``, prepared by
the full environment (``python tests/test_install.py FOLDER``, as ``.ci/run``
does); here they are built.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import threading
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from fixtures.bridge_support import stop_bridge_once_written

import ecgedge

HEAVY = ("torch", "sklearn", "onnx", "onnxscript", "onnx_ir", "wfdb", "matplotlib", "pandas")
ECGEDGE = [sys.executable, "-c", "from ecgedge.cli import main; main()"]
LEAN_DIR = os.environ.get("ECGEDGE_LEAN_DIR")
SECONDS = 60  # of record 100 streamed through the bridge


def heavy_modules_after(code: str) -> list[str]:
    """Top-level names from :data:`HEAVY` that running ``code`` in a fresh interpreter imports."""
    probe = f"{code}\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"'))


@pytest.mark.lean
@pytest.mark.parametrize(
    "code",
    [
        "import ecgedge.firmware_bridge, ecgedge.runtime, ecgedge.calibration",
        "import ecgedge.firmware_bridge.hub, ecgedge.firmware_bridge.simulator, ecgedge.runtime.onnxruntime_backend",
        "import ecgedge.datasets",
    ],
)
def test_the_bedside_modules_import_no_training_library(code):
    assert heavy_modules_after(code) == []


@pytest.mark.lean
def test_datasets_import_without_the_bridge():
    modules = subprocess.run(
        [sys.executable, "-c", "import sys, ecgedge.datasets; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "ecgedge.firmware_bridge" not in modules


@pytest.mark.lean
@pytest.mark.parametrize("command", [[], ["bridge"], ["simulate"], ["calibrate"]])
def test_help_imports_no_training_library(command):
    code = f"from ecgedge.cli import main\ntry:\n    main({[*command, '--help']!r})\nexcept SystemExit:\n    pass"
    assert heavy_modules_after(code) == []


@pytest.mark.lean
def test_one_version_and_type_information_shipped():
    assert importlib.metadata.version("ecgedge") == ecgedge.__version__
    assert resources.files("ecgedge").joinpath("py.typed").is_file()


def build_lean_inputs(folder: Path) -> Path:
    """Write what the lean tests need but cannot build without the extras into ``folder``.

    ``bundle/``: the shipped model exported (FP32); ``record100.npz``: the
    first :data:`SECONDS` of MIT-BIH record 100 (lead MLII) as ADC counts.
    """
    from ecgedge.datasets import load_wfdb_record
    from ecgedge.export import export_bundle
    from ecgedge.models import default_model_path

    export_bundle(default_model_path(), folder / "bundle", int8=False, fp16=False)
    record = load_wfdb_record(lead="MLII")
    np.savez(
        folder / "record100.npz",
        adc=record.to_adc()[: int(SECONDS * record.fs)],
        fs=record.fs,
        gain=record.adc_gain,
        baseline=record.baseline,
    )
    return folder


@pytest.fixture(scope="module")
def lean_inputs(tmp_path_factory):
    """A bundle and a minute of record 100 as ADC counts, from ECGEDGE_LEAN_DIR or built here."""
    folder = Path(LEAN_DIR) if LEAN_DIR else build_lean_inputs(tmp_path_factory.mktemp("lean"))
    with np.load(folder / "record100.npz") as record:
        return folder / "bundle", dict(record)


@pytest.mark.lean
def test_the_bridge_runs_end_to_end_on_the_base_install(lean_inputs, tmp_path):
    """A virtual board plays record 100 over a pty; ``ecgedge bridge`` scores it with ONNX Runtime."""
    from ecgedge.firmware_bridge.simulator import PtyEndpoint, VirtualBoard, run_boards

    bundle, record = lean_inputs
    board = VirtualBoard(record["adc"], float(record["fs"]), float(record["gain"]), int(record["baseline"]))
    endpoint = PtyEndpoint()
    jsonl = tmp_path / "beats.jsonl"
    bridge = subprocess.Popen(
        [
            *ECGEDGE,
            "bridge",
            "--port",
            endpoint.path,
            "--bundle",
            str(bundle),
            "--jsonl",
            str(jsonl),
            "--db",
            str(tmp_path / "beats.db"),
            "--duration",
            "600",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    player = threading.Thread(
        target=run_boards,
        args=([(board, endpoint)],),
        kwargs={"speed": 20, "wait_reader": 60, "flow_control": True},  # a slow machine delays frames, loses none
    )
    try:
        started = bridge.stderr.readline()  # "bridge: 1 board(s), ..." once its bundle is loaded and the port added
        assert started.startswith("bridge:"), started + bridge.communicate(timeout=60)[1]
        player.start()
        player.join(timeout=300)
        stdout, stderr = stop_bridge_once_written(bridge, jsonl, 65)  # the stream is over: 65 beats at least
    finally:
        bridge.kill()
        endpoint.close()
    assert bridge.returncode == 0, stderr
    summary = json.loads(stdout.split("summary-json: ")[1])
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    beats = [r for r in rows if "event" not in r]
    # record 100 beats about 75 times a minute; the first and last beat of the minute cannot be cut
    assert 65 <= summary["beats"] == len(beats) <= 80
    assert summary["frames_dropped"] == summary["frames_lost"] == 0
    assert all(np.isfinite(r["score"]) for r in beats)


@pytest.mark.lean
def test_simulate_plays_the_bundled_record_on_the_base_install():
    """No wfdb needed: MIT-BIH records are format 212, read with numpy (the lean CI venv has no wfdb)."""
    sim = subprocess.Popen(
        [*ECGEDGE, "simulate", "--pty", "--duration", "2", "--speed", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = sim.stdout.readline().strip()
        assert port.startswith("port: /dev/pts/"), port + sim.communicate(timeout=30)[1]
        import serial

        received = b""
        with serial.Serial(port.split(": ")[1], timeout=5) as board:
            try:  # in small reads: the board closes its pty when done, and a read cut short loses what it held
                while len(received) < 2000 and (chunk := board.read(64)):
                    received += chunk
            except serial.SerialException:
                pass  # the board played its 2 s and unplugged
        stdout, stderr = sim.communicate(timeout=60)
    finally:
        sim.kill()
    assert sim.returncode == 0, stderr
    assert "streaming 2 s of MLII, V5 at 360 Hz" in stderr and len(received) > 1000
    assert json.loads(stdout.split("simulate: ")[1])["frames"] > 50


if __name__ == "__main__":  # .ci/run: python tests/test_install.py FOLDER (in the full environment)
    build_lean_inputs(Path(sys.argv[1]))
