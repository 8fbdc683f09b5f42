"""``ecgedge train`` and ``ecgedge evaluate`` through click's runner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ecgedge.cli import main
from ecgedge.persistence import read_model_file


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "model.npz"
    result = CliRunner().invoke(main, ["train", "--out", str(out), "--max-epochs", "2", "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_train_writes_a_model(trained):
    out, output = trained
    assert out.is_file() and "292 normal beats" in output


def test_evaluate_json_is_one_consistent_object(trained):
    result = CliRunner().invoke(main, ["evaluate", str(trained[0]), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (tn, fp), (fn, tp) = report["confusion_matrix"]
    assert tn + fp + fn + tp == report["n_beats"] == 4500
    assert tn + fp == 2627
    assert 0.5 < report["roc_auc"] <= 1.0
    assert report["anomaly_recall"] == pytest.approx(tp / (tp + fn))


def test_evaluate_on_a_user_file(trained, tmp_path, ecg5000):
    idx = np.concatenate([np.flatnonzero(ecg5000[3] == 1)[:20], np.flatnonzero(ecg5000[3] != 1)[:20]])
    X, y = ecg5000[2][idx], ecg5000[3][idx]
    path = tmp_path / "beats.npz"
    np.savez(path, X=X, y=y)
    result = CliRunner().invoke(main, ["evaluate", str(trained[0]), "--dataset", str(path)])
    assert result.exit_code == 0, result.output
    assert "ROC AUC" in result.output and "40 beats" in result.output


def test_evaluate_refuses_a_damaged_model(trained, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(trained[0].read_bytes()[:100])
    result = CliRunner().invoke(main, ["evaluate", str(bad)])
    assert result.exit_code != 0 and "truncated or corrupt" in result.output


def test_evaluate_needs_both_classes(trained, tmp_path, ecg5000):
    path = tmp_path / "normals.npz"
    np.savez(path, X=ecg5000[2][ecg5000[3] == 1][:10], y=np.ones(10, dtype=int))
    result = CliRunner().invoke(main, ["evaluate", str(trained[0]), "--dataset", str(path)])
    assert result.exit_code != 0 and "both normal and abnormal" in result.output


def test_train_rejects_a_missing_dataset(tmp_path):
    result = CliRunner().invoke(main, ["train", "--out", str(tmp_path / "m.npz"), "--dataset", "nope.tsv"])
    assert result.exit_code != 0 and "neither 'ecg5000' nor an existing file" in result.output


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"]])
def test_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_the_same_seed_on_the_same_machine_gives_the_same_model_bit_for_bit(trained, tmp_path):
    again = tmp_path / "again.npz"
    result = CliRunner().invoke(main, ["train", "--out", str(again), "--max-epochs", "2", "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    (first, first_weights), (second, second_weights) = read_model_file(trained[0]), read_model_file(again)
    assert first_weights.keys() == second_weights.keys()
    for name, weights in first_weights.items():
        assert weights.tobytes() == second_weights[name].tobytes(), name
    first["fitted"].pop("fit_time_"), second["fitted"].pop("fit_time_")
    assert first["fitted"] == second["fitted"] and first["params"] == second["params"]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the full recipe: 12 s of training on 2 idle cores, ten minutes on a saturated machine
def test_the_readme_training_command_reproduces_the_shipped_model_s_metrics(tmp_path):
    """What holds on any CPU: the metrics. The weights agree bit for bit only on the same machine
    and library versions (float rounding differs, e.g. with AVX-512)."""
    from ecgedge.models import default_model_path

    out = tmp_path / "retrained.npz"
    result = CliRunner().invoke(main, ["train", "--seed", "0", "--device", "cpu", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    shipped, retrained = (
        json.loads(CliRunner().invoke(main, ["evaluate", str(path), "--json"]).output)
        for path in (default_model_path(), out)
    )
    assert retrained["roc_auc"] == pytest.approx(shipped["roc_auc"], abs=0.002)
    assert retrained["balanced_accuracy"] == pytest.approx(shipped["balanced_accuracy"], abs=0.005)
    assert retrained["threshold"] == pytest.approx(shipped["threshold"], rel=0.005)


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    """A small population model trained by the CLI on the bundled MIT-BIH record, with its beat format."""
    from ecgedge.datasets import default_record_path

    out = tmp_path_factory.mktemp("population") / "population.npz"
    wfdb = default_record_path().parent
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--wfdb",
            str(wfdb),
            "--per-record",
            "200",
            "--out",
            str(out),
            "--max-epochs",
            "2",
            "--device",
            "cpu",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    return out, wfdb, result.output


def test_train_on_wfdb_records_keeps_the_fixed_window_format(population):
    from ecgedge import load
    from ecgedge.population import POPULATION_FORMAT

    out, _, output = population
    assert "the N beats of 1 records (up to 200 each)" in output
    detector = load(out)
    assert detector.beat_format == POPULATION_FORMAT.to_dict() and detector.n_features_in_ == 59
    assert not detector.standardize


def test_evaluate_on_wfdb_records_prints_the_aami_table_and_strips(population, tmp_path):
    out, wfdb, _ = population
    result = CliRunner().invoke(
        main, ["evaluate", str(out), "--wfdb", str(wfdb), "--adapt", "120", "--report", str(tmp_path / "report")]
    )
    assert result.exit_code == 0, result.output
    assert "| record | N beats | VEB Se |" in result.output and "| 100 |" in result.output
    assert "first 120 s of each learnt" in result.output
    assert "| record | beats | AF beats (reference) | AF read | AF duration Se |" in result.output  # the rhythm table
    assert "| VF / flutter episodes of 4 s or more (`(VF`, `(VFL`) | 0 |" in result.output  # the alarm tables
    assert "| alarm | priority | reference | alarms | false | false / h |" in result.output
    assert (tmp_path / "report" / "strip-100.png").stat().st_size > 10_000
    assert "record 100" in (tmp_path / "report" / "index.html").read_text()
    as_json = CliRunner().invoke(main, ["evaluate", str(out), "--wfdb", str(wfdb), "--json"])
    report = json.loads(as_json.output)
    gross = report["gross"]
    assert gross["n"]["N"] > 1500 and gross["n_flagged_share"] < 0.02  # record 100 is mostly normal rhythm
    assert report["per_record"]["100"]["n"] == gross["n"]
    rhythm = report["rhythm"]["gross"]  # record 100 is sinus rhythm with no AF annotation
    assert rhythm["reference_beats"] == 0 and rhythm["af_share_detected"] < 0.01 and rhythm["duration_se"] is None
    alarms = report["alarms"]["gross"]  # record 100: no VT or VF in the reference, the rate followed
    assert alarms["vt"]["reference"] == alarms["vf"]["reference"] == 0 and alarms["heart_rate"]["mae_bpm"] < 1.0


def test_evaluate_names_a_wfdb_directory_without_records(population, tmp_path):
    result = CliRunner().invoke(main, ["evaluate", str(population[0]), "--wfdb", str(tmp_path)])
    assert result.exit_code == 2 and "no WFDB records" in result.output
