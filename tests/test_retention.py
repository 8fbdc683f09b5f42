"""Weeks unattended: what the bridge keeps on disk and in memory stays bounded.

Real SQLite files and JSON lines files written by the sinks, with the beats of the bundled MIT-BIH
record 100 (cut by the bridge's offline path) played again and again, hours later each time.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from ecgedge.analysis.judge import Verdict
from ecgedge.analysis.offline import cut_stream
from ecgedge.analysis.scored import ScoredBeat
from ecgedge.datasets import load_wfdb_record
from ecgedge.firmware_bridge.events import RhythmChange
from ecgedge.firmware_bridge.latency import LatencyHistogram
from ecgedge.firmware_bridge.sinks import JsonlSink, SqliteSink
from ecgedge.population import POPULATION_FORMAT

T0 = 1.8e9  # a UNIX time


@pytest.fixture(scope="module")
def beats():
    """Ten minutes of record 100, as the bridge cuts them."""
    record = load_wfdb_record(lead="MLII")
    return cut_stream(record.signal[: 600 * 360], 360.0, POPULATION_FORMAT, name="bed1")


def _plays(beats, n: int, learning: int = 0):
    """The beats played ``n`` times back to back (10 min each), micro-batches of 64; every 10th beat flagged."""
    for play in range(n):
        scored = []
        for i, beat in enumerate(beats):
            shifted = replace(beat, time=T0 + play * 600 + beat.sample / 360)
            mode = "learning" if play == 0 and i < learning else "adapted"
            verdict = Verdict(mode, None, None if mode == "learning" else 0.5, mode == "adapted" and i % 10 == 0)
            scored.append(ScoredBeat(shifted, 0.0, verdict))
        for k in range(0, len(scored), 64):
            yield scored[k : k + 64]


def test_beats_older_than_the_retention_are_deleted_and_the_file_stops_growing(beats, tmp_path):
    db = tmp_path / "beats.db"
    sink = SqliteSink(db, lambda stream: 360.0, keep_beats_s=3600, keep_events_s=7200)
    sink.save_patient("bed1", {"beats": np.zeros((20, 59), np.float32), "shape_limit": 1.0})
    sizes = []
    for n, batch in enumerate(_plays(beats, 36, learning=100)):  # 6 hours
        sink.write(batch)
        sink.write_events([RhythmChange("bed1", batch[0].beat.time, "sinus", batch[0].beat.sample)])
        sink.commit()
        if n % 200 == 0:
            sizes.append(db.stat().st_size)
    newest = T0 + 35 * 600 + beats[-1].sample / 360
    with sqlite3.connect(db) as con:
        oldest_adapted = con.execute("SELECT MIN(time) FROM beats WHERE mode = 'adapted'").fetchone()[0]
        learning = con.execute("SELECT COUNT(*) FROM beats WHERE mode = 'learning'").fetchone()[0]
        orphans = con.execute("SELECT COUNT(*) FROM anomalies WHERE beat_id NOT IN (SELECT id FROM beats)").fetchone()[
            0
        ]
        flagged = con.execute("SELECT COUNT(*) FROM beats WHERE anomaly = 1").fetchone()[0]
        waveforms = con.execute("SELECT COUNT(*) FROM anomalies").fetchone()[0]
        oldest_event = con.execute("SELECT MIN(time) FROM events").fetchone()[0]
        patients = con.execute("SELECT COUNT(*) FROM patients").fetchone()[0]
    assert newest - 3600 - 60 <= oldest_adapted <= newest - 3600 + 60  # an hour kept, a micro-batch either way
    assert learning == 100 and patients == 1  # what a restart resumes from is never deleted
    assert orphans == 0 and flagged == waveforms
    assert newest - 7200 - 60 <= oldest_event
    # the first hour fills the file; from the second on, deleted pages are reused
    grown = sizes[len(sizes) // 3]
    assert sizes[-1] < 1.2 * grown
    sink.close()
    assert SqliteSink(db, lambda stream: 360.0).patient_state("bed1") is not None


def test_retention_is_named_when_it_makes_no_sense(tmp_path):
    with pytest.raises(ValueError, match="keep_beats_s"):
        SqliteSink(tmp_path / "beats.db", lambda stream: 360.0, keep_beats_s=0)
    with pytest.raises(ValueError, match="backups"):
        JsonlSink(tmp_path / "beats.jsonl", max_bytes=1000, backups=0)


def test_json_lines_rotate_by_size_and_never_split_a_batch(beats, tmp_path):
    path = tmp_path / "beats.jsonl"
    sink = JsonlSink(path, max_bytes=200_000, backups=3)
    written = 0
    for batch in _plays(beats, 6):
        sink.write(batch)
        sink.commit()
        written += len(batch)
    sink.close()
    files = sorted(tmp_path.glob("beats.jsonl*"))
    assert [f.name for f in files] == ["beats.jsonl", "beats.jsonl.1", "beats.jsonl.2", "beats.jsonl.3"]
    assert all(f.stat().st_size <= 200_000 + 64 * 400 for f in files)
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]  # every line whole
    assert 0 < len(rows) < written  # the oldest rotated away
    assert json.loads(path.read_text().splitlines()[-1])["sample"] == beats[-1].sample  # the newest in NAME


def test_latency_percentiles_in_constant_memory_match_the_exact_ones():
    rng = np.random.default_rng(0)
    values = rng.lognormal(np.log(0.2), 0.6, 200_000)
    histogram = LatencyHistogram()
    for chunk in np.array_split(values, 100):
        histogram.add(chunk)
    for q in (50, 99):
        assert histogram.percentile(q) == pytest.approx(np.percentile(values, q), rel=0.01)
    assert histogram.max == values.max() and histogram.count == values.size
    earlier = histogram.snapshot()
    histogram.add([5.0] * 10)
    assert histogram.since(earlier).count == 10 and histogram.since(earlier).percentile(50) == pytest.approx(
        5.0, rel=0.01
    )
    assert LatencyHistogram().summary_ms() == {"p50": None, "p99": None, "max": None}
