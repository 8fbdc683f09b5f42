"""Review a bridge session from its SQLite database: the alarm list and each alarm's strip.

``ecgedge review --db beats.db`` reads what the bridge committed (a finished session, or one still
running: SQLite's WAL lets a reader in beside the writer) and either serves the bedside page over
it (``--http``, the same page as the live one, read from the database) or writes it as a static
report (``--report DIR``: an ``index.html`` with each strip drawn as an inline SVG, no script, no
external file).
"""

from __future__ import annotations

import datetime as dt
import html
import sqlite3
from pathlib import Path

import numpy as np

from ecgedge.view.feed import DISPLAY_HZ


class ReviewFeed:
    """The page's data read from a bridge database (what :class:`~ecgedge.view.feed.LiveFeed` is live).

    Parameters
    ----------
    path : str or Path
        The ``--db`` of ``ecgedge bridge``.

    Raises
    ------
    ValueError
        When the file is not a bridge database.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"{self.path}: no such database")
        with self._connect() as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"beats", "events"} <= tables:
            raise ValueError(f"{self.path}: not a database written by ecgedge bridge --db (no beats and events tables)")
        self._strips = "strips" in tables

    def _connect(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error as exc:
            raise ValueError(f"{self.path}: cannot open ({exc})") from None

    def subscribe(self, viewer) -> dict:
        """What a page starts from (a review stream sends nothing after it; the page asks again)."""
        return self.snapshot()

    def unsubscribe(self, viewer) -> None:
        """Nothing to undo: a review keeps no viewer."""

    def snapshot(self) -> dict:
        """Boards (beats, flags, last rhythm and quality), the alarm list newest first, the strips kept."""
        with self._connect() as db:
            boards = []
            for stream, beats, flagged in db.execute(
                "SELECT stream, COUNT(*), SUM(anomaly) FROM beats GROUP BY stream"
            ):
                last = db.execute(
                    "SELECT rhythm, quality, mode FROM beats WHERE stream = ? ORDER BY id DESC LIMIT 1", (stream,)
                ).fetchone()
                boards.append(
                    {
                        "board": stream,
                        "beats": beats,
                        "flagged": int(flagged or 0),
                        "rhythm": last[0],
                        "quality": last[1],
                        "mode": last[2],
                        "link": "recorded",
                        "heart_rate": None,
                        "learning_left_s": None,
                        "alarms": {},
                        "strip": [],
                        "strip_end": 0,
                        "marks": [],
                    }
                )
            alarms = [
                {"time": t, "board": s, "event": e, "detail": d, "alarm": True, "strip": None}
                for s, t, e, d in db.execute(
                    "SELECT stream, time, event, detail FROM events ORDER BY time DESC LIMIT 500"
                )
            ]
            strips = []
            if self._strips:
                strips = [
                    {"id": i, "board": s, "time": t, "event": k, "detail": d, "alarm": True, "strip": i}
                    for i, s, t, k, d in db.execute(
                        "SELECT id, stream, time, kind, detail FROM strips ORDER BY time DESC"
                    )
                ]
        with_strip = {(x["time"], x["board"], x["event"]) for x in strips}
        merged = sorted(
            strips + [a for a in alarms if (a["time"], a["board"], a["event"]) not in with_strip],
            key=lambda a: -a["time"],
        )
        return {"type": "snapshot", "mode": "review", "boards": boards, "alarms": merged, "time": None}

    def strip(self, strip_id: int) -> dict | None:
        """One strip, decimated for the page: ``{"fs", "start", "values", ...}``; None when there is none."""
        if not self._strips:
            return None
        with self._connect() as db:
            row = db.execute(
                "SELECT stream, time, kind, detail, fs, start, samples FROM strips WHERE id = ?", (int(strip_id),)
            ).fetchone()
        if row is None:
            return None
        stream, time, kind, detail, fs, start, blob = row
        samples = np.frombuffer(blob, dtype="<f4").astype(float)
        step = max(1, round(fs / DISPLAY_HZ))
        n = samples.size // step * step
        values = samples[:n].reshape(-1, step).mean(axis=1) if n else samples
        return {
            "id": int(strip_id),
            "board": stream,
            "time": time,
            "event": kind,
            "detail": detail,
            "fs": fs / step,
            "start_s": start / fs,
            "values": [round(v, 3) for v in values.tolist()],
        }


def _svg(values: list[float], width: int = 900, height: int = 140) -> str:
    """A strip as an inline SVG polyline (1 mV over a quarter of the height)."""
    if not values:
        return "<p>(no signal kept)</p>"
    xs = np.linspace(0, width, len(values))
    ys = height / 2 - np.asarray(values) * height / 4
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, np.clip(ys, 0, height), strict=True))
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'style="background:#000"><polyline points="{points}" fill="none" stroke="#3f3" stroke-width="1.2"/></svg>'
    )


def write_report(feed: ReviewFeed, directory: str | Path) -> Path:
    """Write the session's alarm list and every kept strip as ``directory/index.html``; return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = feed.snapshot()
    rows = []
    for alarm in state["alarms"]:
        when = dt.datetime.fromtimestamp(alarm["time"], dt.timezone.utc).isoformat(timespec="seconds")
        what = html.escape(f"{when} {alarm['board']} {alarm['event']}: {alarm['detail']}")
        strip = feed.strip(alarm["strip"]) if alarm["strip"] is not None else None
        rows.append(
            f'<section class="alarm" data-event="{html.escape(alarm["event"])}"><h3>{what}</h3>'
            + (_svg(strip["values"]) if strip else "")
            + "</section>"
        )
    boards = "".join(
        f"<li>{html.escape(b['board'])}: {b['beats']} beats, {b['flagged']} flagged, rhythm {b['rhythm']}, "
        f"signal {b['quality']}</li>"
        for b in state["boards"]
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>ecgedge review</title>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        "<style>body{font-family:sans-serif;background:#111;color:#ddd;max-width:960px;margin:auto}"
        "h3{font-size:0.9em;font-weight:normal}</style></head><body>"
        f"<h1>ecgedge review: {html.escape(feed.path.name)}</h1><ul>{boards}</ul>"
        f"<h2>Alarms and flagged beats, newest first ({len(rows)})</h2>{''.join(rows)}</body></html>\n"
    )
    index = directory / "index.html"
    index.write_text(page)
    return index
