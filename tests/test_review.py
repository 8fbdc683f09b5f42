"""``ecgedge review`` and the alarm strips a bridge keeps in its SQLite database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from ecgedge.view.review import ReviewFeed

ECGEDGE = [sys.executable, "-c", "from ecgedge.cli import main; main()"]


def test_flagged_beats_and_alarms_keep_their_strips_bounded_and_merged(bridge_session):
    db, summary = bridge_session
    with sqlite3.connect(db) as conn:
        strips = conn.execute("SELECT kind, fs, start, LENGTH(samples) / 4 FROM strips ORDER BY id").fetchall()
        flagged = [s for (s,) in conn.execute("SELECT sample FROM beats WHERE anomaly = 1 ORDER BY id")]
    assert summary["flagged"] == len(flagged) > 0
    beats = [s for s in strips if s[0] == "beat"]
    assert 0 < len(beats) <= len(flagged)  # a run of flags shares a strip
    assert all(n <= 8 * fs + 1 for _, fs, _, n in strips) and max(n for *_, n in beats) == 8 * 360
    covered = [any(start <= f < start + n for _, _, start, n in beats) for f in flagged]
    assert all(covered)  # every flagged beat is on a kept strip
    assert "rhythm-change" in {s[0] for s in strips}


def test_the_review_report_is_one_self_contained_page(bridge_session, tmp_path):
    db, summary = bridge_session
    result = subprocess.run(
        [*ECGEDGE, "review", "--db", str(db), "--report", str(tmp_path / "report")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "report" / "index.html").read_text()
    assert f"{summary['beats']} beats, {summary['flagged']} flagged" in page
    assert page.count("<svg") >= 1 and "<script" not in page and "http" not in page.split("<body>")[1]
    assert [p.name for p in (tmp_path / "report").iterdir()] == ["index.html"]


def test_a_strip_comes_back_as_it_was_kept(bridge_session):
    db, _ = bridge_session
    feed = ReviewFeed(db)
    with sqlite3.connect(db) as conn:
        strip_id, fs, blob = conn.execute("SELECT id, fs, samples FROM strips ORDER BY id LIMIT 1").fetchone()
    strip = feed.strip(strip_id)
    kept = np.frombuffer(blob, "<f4")
    step = round(fs / 90)
    assert strip["fs"] == fs / step and len(strip["values"]) == kept.size // step
    np.testing.assert_allclose(strip["values"][:10], kept[: 10 * step].reshape(10, step).mean(axis=1), atol=1e-3)
    assert feed.strip(10**9) is None


def test_the_review_names_what_is_wrong_with_its_input(tmp_path):
    with pytest.raises(ValueError, match="no such database"):
        ReviewFeed(tmp_path / "missing.db")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(ValueError, match="not a database written by ecgedge bridge"):
        ReviewFeed(other)
    result = subprocess.run(
        [*ECGEDGE, "review", "--db", str(other), "--report", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "not a database written by ecgedge bridge" in result.stderr
    result = subprocess.run([*ECGEDGE, "review", "--db", str(other)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "give --report DIR, --http HOST:PORT or both" in result.stderr
