"""The visual report: every figure is written and index.html shows it."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from ecgedge.cli import main
from ecgedge.evaluation import detection_report
from ecgedge.report import write_report

FIGURES = ("roc.png", "scores.png", "confusion.png", "reconstructions.png", "loss.png")


def test_report_writes_figures_and_index(small_detector, test_subset, tmp_path):
    X, y = test_subset
    report = detection_report(y != 1, small_detector.score_samples(X), small_detector.offset_)
    index = write_report(small_detector, X, y, report, tmp_path / "report", "tiny")
    page = index.read_text()
    for name in FIGURES:
        png = tmp_path / "report" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="{name}"' in page


def test_evaluate_cli_writes_report(small_detector, test_subset, tmp_path):
    X, y = test_subset
    data, model = tmp_path / "beats.npz", tmp_path / "model.npz"
    np.savez(data, X=X, y=y)
    small_detector.save(model)
    result = CliRunner().invoke(main, ["evaluate", str(model), "--dataset", str(data), "--report", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert all((tmp_path / "r" / name).is_file() for name in FIGURES)
