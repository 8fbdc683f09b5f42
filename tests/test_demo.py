"""``ecgedge demo``: the main job on bundled defaults, end to end over a real pty."""

from __future__ import annotations

import json
import sqlite3

from click.testing import CliRunner

from ecgedge.cli import main


def test_demo_streams_flags_logs_and_reports(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--minutes", "2", "--calibrate", "30"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "summary.json").read_text())
    summary = report["summary"]
    # record 100 beats at about 75 per minute; the last second cannot complete a window
    assert 130 <= summary["beats"] <= 160 and summary["frames_dropped"] == 0
    truth = report["against_annotations"]
    # after per-patient calibration the normal rhythm of record 100 is rarely flagged
    assert truth["normal_flagged"] <= 0.05 * truth["normal_beats"]
    rows = [json.loads(line) for line in (out / "beats.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "event" not in r]  # beats only; events (link-up, ...) share the file
    # the first 30 beats teach the patient's threshold: logged, never flagged; the rest are judged by it
    assert all(r["learning"] and r["threshold"] is None and not r["anomaly"] for r in rows[:30])
    assert not any(r["learning"] for r in rows[30:]) and len({r["threshold"] for r in rows[30:]}) == 1
    assert summary["learning_beats"] == 30 and summary["flagged"] == sum(r["anomaly"] for r in rows)
    with sqlite3.connect(out / "beats.db") as db:
        assert db.execute("SELECT COUNT(*) FROM beats").fetchone()[0] == len(rows) == summary["beats"]
        assert db.execute("SELECT COUNT(*) FROM beats WHERE threshold IS NULL").fetchone()[0] == 30
    assert (out / "report.png").stat().st_size > 10_000
    assert (out / "bundle" / "model.int8.onnx").is_file()
