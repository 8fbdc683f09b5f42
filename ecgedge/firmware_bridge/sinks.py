"""Where scored beats, stream events and alarm strips go: JSON lines and an SQLite database.

Both take a micro-batch of beats with ``write`` and of events
(:mod:`~ecgedge.firmware_bridge.events`) with ``write_events``, and make
them durable with ``commit``; the hub commits every micro-batch before it
reports it, so an alert or event that was shown was committed.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO

import numpy as np

from ecgedge._closing import Closing
from ecgedge.analysis.scored import ScoredBeat
from ecgedge.firmware_bridge.events import Event


def beat_line(scored: ScoredBeat) -> dict:
    """A beat's JSON-lines object (no waveforms)."""
    b, v = scored.beat, scored.verdict
    return {
        "stream": b.stream,
        "sample": b.sample,
        "time": round(b.time, 4),
        "score": scored.score,
        "mode": v.mode,
        "threshold": v.threshold,
        "distance": None if v.distance is None else round(v.distance, 4),
        "learning": scored.learning,
        "anomaly": v.anomaly,
        "rr": round(b.rr, 4),
        "gap": b.gap,
        "rhythm": v.rhythm,
        "quality": v.quality,
        "reason": v.reason,
        "heart_rate": v.heart_rate,
    }


def _stream_of(handler: RotatingFileHandler) -> IO[str]:
    """A rotating handler's open file (made without ``delay``, it opens one at once and after each rollover)."""
    if handler.stream is None:
        raise RuntimeError(f"{handler.baseFilename}: the rotating handler has no open file")
    return handler.stream


class JsonlSink(Closing):
    """One JSON object per beat or event, one per line (events have an ``"event"`` field).

    A file is rotated by size as :class:`logging.handlers.RotatingFileHandler` rotates logs (which
    does it): past ``max_bytes`` it becomes ``NAME.1`` (``NAME.1`` becomes ``NAME.2``, ...), the
    oldest beyond ``backups`` is deleted, and a new ``NAME`` starts; a micro-batch is never split.

    Parameters
    ----------
    target : str, Path or text file
        A path (opened for appending) or an open text stream (never rotated).
    max_bytes : int, default=0
        Rotate a file past this size; 0: never.
    backups : int, default=4
        Rotated files kept.
    """

    def __init__(self, target: str | Path | IO[str], *, max_bytes: int = 0, backups: int = 4) -> None:
        if max_bytes < 0 or backups < 0 or (max_bytes and not backups):
            raise ValueError(f"need max_bytes >= 0 and backups >= 1 to rotate, got {max_bytes}, {backups}")
        self._owned = isinstance(target, (str, Path))
        self._handler: RotatingFileHandler | None = None
        self._file: IO[str]
        if not isinstance(target, (str, Path)):
            self._file = target
        elif max_bytes:
            self._handler = RotatingFileHandler(target, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
            self._handler.terminator = ""
            self._file = _stream_of(self._handler)
        else:
            self._file = open(target, "a", encoding="utf-8")  # noqa: SIM115 - held until close()
        self._pending: list[str] = []

    def write(self, beats: list[ScoredBeat]) -> None:
        self._pending += [json.dumps(beat_line(b)) + "\n" for b in beats]

    def write_events(self, events: list[Event]) -> None:
        self._pending += [json.dumps(e.as_dict()) + "\n" for e in events]

    def commit(self) -> None:
        text, self._pending = "".join(self._pending), []
        if self._handler is not None:  # its rotation, our write: an error (a full disk) is raised, not logged
            if text and self._handler.shouldRollover(logging.makeLogRecord({"msg": text})):
                self._handler.doRollover()
            self._file = _stream_of(self._handler)
        self._file.write(text)
        self._file.flush()

    def close(self) -> None:
        self.commit()
        if self._handler is not None:
            self._handler.close()
        elif self._owned:
            self._file.close()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS beats (
    id INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    sample INTEGER NOT NULL,      -- R-peak index in the board's samples
    time REAL NOT NULL,           -- UNIX time of the R peak
    score REAL NOT NULL,          -- the model's score, higher is more normal
    threshold REAL,               -- mode 'fixed': the score threshold; else NULL
    anomaly INTEGER NOT NULL,     -- 1: flagged (score < threshold, or distance > 1)
    rr REAL NOT NULL,             -- seconds from the previous R peak
    gap INTEGER NOT NULL,         -- 1: the window covers interpolated samples
    mode TEXT NOT NULL DEFAULT 'fixed', -- fixed, learning or adapted
    distance REAL,                -- mode 'adapted': distance to the patient's normal beats, in limits
    rhythm TEXT NOT NULL DEFAULT 'unknown', -- sinus, af (fibrillation or flutter) or unknown
    quality TEXT NOT NULL DEFAULT 'ok',     -- ok or noisy (a noisy beat is never flagged)
    reason TEXT,                  -- why a flagged adapted beat was flagged: shape or timing
    heart_rate REAL               -- the stream's heart rate after this beat (bpm); NULL when lost
);
CREATE INDEX IF NOT EXISTS beats_stream_sample ON beats (stream, sample);
CREATE TABLE IF NOT EXISTS anomalies (
    beat_id INTEGER PRIMARY KEY REFERENCES beats (id),
    fs REAL NOT NULL,             -- sample rate of waveform
    window_start INTEGER NOT NULL,-- board index of waveform[0]
    waveform BLOB NOT NULL,       -- float32 little-endian, filtered ECG in mV
    model_input BLOB NOT NULL     -- float32 little-endian, what the model scored
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    time REAL NOT NULL,           -- UNIX time it was detected
    event TEXT NOT NULL,          -- link-down, link-up, board-error, no-signal, no-beats, noisy, rhythm-change, ...
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_stream_time ON events (stream, time);
CREATE TABLE IF NOT EXISTS strips (
    id INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    time REAL NOT NULL,           -- UNIX time of the flag or alarm that opened it
    kind TEXT NOT NULL,           -- beat (a flagged beat) or the event: link-down, rhythm-change, noisy, ...
    detail TEXT NOT NULL,
    fs REAL NOT NULL,
    start INTEGER NOT NULL,       -- board index of samples[0]
    samples BLOB NOT NULL         -- float32 little-endian, filtered ECG in mV (4 s before to 4 s after)
);
CREATE INDEX IF NOT EXISTS strips_time ON strips (time);
CREATE TABLE IF NOT EXISTS patients (
    stream TEXT PRIMARY KEY,
    time REAL NOT NULL,           -- UNIX time it was saved
    state BLOB NOT NULL           -- PatientMemory.state() as an .npz archive (no pickle)
);
"""
#: Most beats (and most events) one commit deletes: eight of the hub's largest micro-batches.
PRUNE_BATCH = 4096
#: The write-ahead log is cut back to this size after each checkpoint.
WAL_LIMIT_BYTES = 32 * 1024 * 1024
#: Columns added to ``beats`` since the first schema, for databases written before them.
_ADDED_COLUMNS = {
    "mode": "TEXT NOT NULL DEFAULT 'fixed'",
    "distance": "REAL",
    "rhythm": "TEXT NOT NULL DEFAULT 'unknown'",
    "quality": "TEXT NOT NULL DEFAULT 'ok'",
    "reason": "TEXT",
    "heart_rate": "REAL",
}


class SqliteSink(Closing):
    """Every beat, the waveform of every anomaly and every stream event, in an SQLite database (WAL).

    Each :meth:`commit` is one transaction. With ``synchronous="NORMAL"``
    (the default) a committed transaction survives the process being killed
    (``kill -9``) - WAL commits reach the operating system at once - but not
    a power cut; ``"FULL"`` also survives that, at the price of an fsync per
    commit.

    Parameters
    ----------
    path : str or Path
    fs_of : callable
        ``fs_of(stream_name) -> float``, the sample rate of a stream.
    synchronous : {"NORMAL", "FULL"}, default="NORMAL"
    max_strips : int, default=2000
        Alarm strips kept (:mod:`~ecgedge.firmware_bridge.strips`); past this the oldest are
        deleted. A strip of 8 s at 360 Hz takes about 12 KB: 2,000 take about 23 MB.
    keep_beats_s : float or None, default=None
        Keep the beats (and flagged beats' waveforms) of this many seconds before the newest beat
        written; older ones are deleted, at most :data:`PRUNE_BATCH` rows in each commit, in
        its transaction, so deleting never holds the hub up. The learning window's beats are
        kept (a restarted bridge resumes a calibrated stream from them), and so are the
        patient memories. None: every beat.
    keep_events_s : float or None, default=None
        The same for events, measured against the same newest beat.

    Notes
    -----
    Deleted pages are reused by later rows, so with retention the file stops growing once it
    holds the retained span; the write-ahead log is checkpointed by SQLite every 1,000 pages and
    cut back to :data:`WAL_LIMIT_BYTES` after each checkpoint.
    """

    def __init__(
        self,
        path: str | Path,
        fs_of,
        *,
        synchronous: str = "NORMAL",
        max_strips: int = 2000,
        keep_beats_s: float | None = None,
        keep_events_s: float | None = None,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        for name, value in (("keep_beats_s", keep_beats_s), ("keep_events_s", keep_events_s)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 seconds or None, got {value}")
        self.path = Path(path)
        self._fs_of = fs_of
        # made in one thread, used by the hub thread only (one user at a time)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        self._db.executescript(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(beats)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE beats ADD COLUMN {column} {kind}")
        self._in_tx = False
        self._closed = False
        self.max_strips = max_strips
        self.keep_beats_s, self.keep_events_s = keep_beats_s, keep_events_s
        self._newest = self._db.execute("SELECT MAX(time) FROM beats").fetchone()[0]

    def learning_scores(self, stream: str, limit: int) -> list[float]:
        """The scores of ``stream``'s first learning beats stored here (at most ``limit``), oldest first.

        The database is the patient's state: replaying these through a new
        :class:`~ecgedge.analysis.judge.BeatJudge` after a restart (even
        a ``kill -9``) resumes the threshold learnt, or the learning, where it was.
        """
        self.commit()
        rows = self._db.execute(
            "SELECT score FROM beats WHERE stream = ? AND threshold IS NULL AND mode != 'adapted' ORDER BY id LIMIT ?",
            (stream, limit),
        )
        return [score for (score,) in rows]

    def save_patient(self, stream: str, state: dict) -> None:
        """Keep ``stream``'s patient memory (:meth:`ecgedge.calibration.PatientMemory.state`), replacing the last."""
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=True, **{k: np.asarray(v) for k, v in state.items()})
        self._begin()
        self._db.execute(
            "INSERT OR REPLACE INTO patients (stream, time, state) VALUES (?, ?, ?)",
            (stream, time.time(), buffer.getvalue()),
        )

    def patient_state(self, stream: str) -> dict | None:
        """The patient memory last saved for ``stream``, or None."""
        self.commit()
        row = self._db.execute("SELECT state FROM patients WHERE stream = ?", (stream,)).fetchone()
        if row is None:
            return None
        with np.load(io.BytesIO(row[0]), allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}

    def _begin(self) -> None:
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True

    def write_events(self, events: list[Event]) -> None:
        self._begin()
        self._db.executemany(
            "INSERT INTO events (stream, time, event, detail) VALUES (?, ?, ?, ?)",
            [(e.stream, e.time, e.name, e.detail) for e in events],
        )

    def write(self, beats: list[ScoredBeat]) -> None:
        self._begin()
        if beats:
            newest = max(b.beat.time for b in beats)
            self._newest = newest if self._newest is None else max(self._newest, newest)
        for b in beats:
            beat = b.beat
            cur = self._db.execute(
                "INSERT INTO beats (stream, sample, time, score, threshold, anomaly, rr, gap, mode, distance, rhythm, "
                "quality, reason, heart_rate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    beat.stream,
                    beat.sample,
                    beat.time,
                    b.score,
                    b.threshold,
                    int(b.anomaly),
                    beat.rr,
                    int(beat.gap),
                    b.verdict.mode,
                    b.verdict.distance,
                    b.verdict.rhythm,
                    b.verdict.quality,
                    b.verdict.reason,
                    b.verdict.heart_rate,
                ),
            )
            if b.anomaly:
                self._db.execute(
                    "INSERT INTO anomalies (beat_id, fs, window_start, waveform, model_input) VALUES (?, ?, ?, ?, ?)",
                    (
                        cur.lastrowid,
                        self._fs_of(beat.stream),
                        beat.window_start,
                        np.asarray(beat.window, "<f4").tobytes(),
                        np.asarray(beat.model_input, "<f4").tobytes(),
                    ),
                )

    def write_strips(self, strips) -> None:
        """Keep alarm strips (:class:`~ecgedge.firmware_bridge.strips.Strip`); the oldest beyond ``max_strips`` go."""
        self._begin()
        self._db.executemany(
            "INSERT INTO strips (stream, time, kind, detail, fs, start, samples) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (x.stream, x.time, x.kind, x.detail, x.fs, x.start, np.asarray(x.samples, "<f4").tobytes())
                for x in strips
            ],
        )
        self._db.execute("DELETE FROM strips WHERE id <= (SELECT MAX(id) FROM strips) - ?", (self.max_strips,))

    def commit(self) -> None:
        if self._in_tx:
            self._prune()
            self._db.execute("COMMIT")
            self._in_tx = False

    def _prune(self) -> None:
        """Delete the oldest beats and events beyond the retention, a bounded batch of each, in the open transaction."""
        if self._newest is None:
            return
        if self.keep_beats_s is not None:
            cutoff = self._newest - self.keep_beats_s
            # rows lie in time order by id, near enough: look at the oldest batch only, never the whole table
            last = self._db.execute(
                "SELECT MAX(id) FROM (SELECT id, time FROM beats WHERE mode != 'learning' "
                "ORDER BY id LIMIT ?) WHERE time < ?",
                (PRUNE_BATCH, cutoff),
            ).fetchone()[0]
            if last is not None:
                self._db.execute(
                    "DELETE FROM anomalies WHERE beat_id IN (SELECT id FROM beats WHERE id <= ? AND time < ? "
                    "AND mode != 'learning')",
                    (last, cutoff),
                )
                self._db.execute("DELETE FROM beats WHERE id <= ? AND time < ? AND mode != 'learning'", (last, cutoff))
        if self.keep_events_s is not None:
            cutoff = self._newest - self.keep_events_s
            last = self._db.execute(
                "SELECT MAX(id) FROM (SELECT id, time FROM events ORDER BY id LIMIT ?) WHERE time < ?",
                (PRUNE_BATCH, cutoff),
            ).fetchone()[0]
            if last is not None:
                self._db.execute("DELETE FROM events WHERE id <= ? AND time < ?", (last, cutoff))

    def close(self) -> None:
        if self._closed:
            return
        self.commit()
        self._db.close()
        self._closed = True
