"""``ecgedge demo``: the main job on bundled defaults, end to end over a real pty."""

from __future__ import annotations

import json
import sqlite3

from click.testing import CliRunner

from ecgedge.cli import main


def test_demo_streams_flags_logs_and_reports(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--minutes", "2", "--adapt", "30"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "summary.json").read_text())
    summary = report["summary"]
    # record 100 beats at about 75 per minute; the last second cannot complete a window
    assert 130 <= summary["beats"] <= 160 and summary["frames_dropped"] == 0
    truth = report["against_annotations"]
    # adapted to the patient, the normal rhythm of record 100 is rarely flagged
    assert truth["normal_flagged"] <= 0.02 * truth["normal_beats"]
    rows = [json.loads(line) for line in (out / "beats.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "event" not in r]  # beats only; events (link-up, ...) share the file
    # the first 30 s teach the bridge the patient: logged, never flagged; the rest are judged by the patient's memory
    learning = summary["learning_beats"]
    assert 30 <= learning <= 45 and summary["adapted_streams"] == ["bed1"]
    assert all(r["learning"] and r["mode"] == "learning" and not r["anomaly"] for r in rows[:learning])
    assert all(r["mode"] == "adapted" and r["distance"] >= 0 for r in rows[learning:])
    assert summary["flagged"] == sum(r["anomaly"] for r in rows) == sum(r["distance"] > 1 for r in rows[learning:])
    with sqlite3.connect(out / "beats.db") as db:
        assert db.execute("SELECT COUNT(*) FROM beats").fetchone()[0] == len(rows) == summary["beats"]
        assert db.execute("SELECT COUNT(*) FROM beats WHERE mode = 'learning'").fetchone()[0] == learning
        assert db.execute("SELECT COUNT(*) FROM patients WHERE stream = 'bed1'").fetchone()[0] == 1
    assert (out / "report.png").stat().st_size > 10_000
    assert (out / "bundle" / "model.int8.onnx").is_file()
