"""Shared fixtures: real ECG5000 beats and a small detector trained once per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(2)

FAST = {"hidden_size": 16, "latent_size": 8, "max_epochs": 15, "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="session")
def ecg5000():
    """(X_train, y_train, X_test, y_test) of the bundled UCR ECG5000."""
    from ecgedge.datasets import load_ecg5000

    return (*load_ecg5000("train", return_X_y=True), *load_ecg5000("test", return_X_y=True))


@pytest.fixture(scope="session")
def small_detector(ecg5000):
    """A quickly trained detector on the 292 normal ECG5000 training beats."""
    from ecgedge import LSTMAutoencoderDetector

    X, y = ecg5000[0], ecg5000[1]
    return LSTMAutoencoderDetector(**FAST).fit(X[y == 1])


@pytest.fixture(scope="session")
def test_subset(ecg5000):
    """300 test beats, half normal, half abnormal, fixed."""
    X, y = ecg5000[2], ecg5000[3]
    rng = np.random.RandomState(0)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(y == 1), 150, False), rng.choice(np.flatnonzero(y != 1), 150, False)]
    )
    return X[idx], y[idx]


@pytest.fixture(scope="session")
def population_bundle(tmp_path_factory):
    """The shipped population model exported as a user exports it (the bridge's default model)."""
    from ecgedge.models import population_model_path

    out = tmp_path_factory.mktemp("population") / "bundle"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from ecgedge.cli import main; main()",
            "export",
            str(population_model_path()),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def bridge_session(population_bundle, tmp_path_factory):
    """A finished bridge session's SQLite database and summary: 200 s of MIT-BIH 208 (or the bundled 100,
    without ../shared/data) live over a pty, learnt for 60 s."""
    from fixtures.bridge_support import play

    from ecgedge.datasets import load_wfdb_record
    from ecgedge.firmware_bridge.hub import Hub
    from ecgedge.firmware_bridge.settings import BridgeSettings, Judging
    from ecgedge.firmware_bridge.simulator import PtyEndpoint, VirtualBoard
    from ecgedge.firmware_bridge.sinks import SqliteSink
    from ecgedge.runtime import load_scorer

    record_208 = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb" / "208"
    record = load_wfdb_record(record_208 if record_208.with_suffix(".hea").exists() else None, lead="MLII")
    db = tmp_path_factory.mktemp("session") / "beats.db"
    hub = Hub(load_scorer(population_bundle, threads=1), BridgeSettings(judging=Judging.adapt(60)))
    endpoint = PtyEndpoint()
    hub.add_board(endpoint.path, name="bed1")
    hub.sinks.append(SqliteSink(db, hub.fs_of))
    board = VirtualBoard(record.to_adc()[: 200 * 360], record.fs, record.adc_gain, record.baseline)
    return db, play(hub, [(board, endpoint)], speed=40)
