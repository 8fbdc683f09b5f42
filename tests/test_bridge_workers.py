"""``ecgedge bridge --workers N``: groups of boards served by worker processes, every output written by one parent.

Virtual boards play MIT-BIH record 100 over real ptys into real worker
processes (``spawn``) scoring with a real exported bundle.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from fixtures.bridge_support import play, tiny_bundle

from ecgedge.firmware_bridge.hub import Hub
from ecgedge.firmware_bridge.settings import BridgeSettings, Judging
from ecgedge.firmware_bridge.simulator import PtyEndpoint, VirtualBoard, run_boards
from ecgedge.firmware_bridge.sinks import SqliteSink
from ecgedge.firmware_bridge.source import PortError
from ecgedge.firmware_bridge.workers import WorkerPool
from ecgedge.runtime import load_scorer

ECGEDGE = [sys.executable, "-c", "from ecgedge.cli import main; main()"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory)


def boards(n: int, seconds: float) -> list:
    """``n`` boards, each its own stretch of record 100, over ptys."""
    return [(VirtualBoard.from_record(start_s=40 * i, duration_s=seconds), PtyEndpoint()) for i in range(n)]


class Served:
    """A pool running in a thread, keeping what it commits; ``stop()`` ends it and returns its summary."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.beats, self.events = [], []
        pool.on_beats = self.beats.extend
        pool.on_event = self.events.append
        self._stop, self._result = threading.Event(), {}
        self._thread = threading.Thread(target=lambda: self._result.update(pool.run(stop=self._stop)))
        self._thread.start()

    def wait_for(self, predicate, timeout: float = 60.0) -> None:
        give_up = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < give_up, (self.events, len(self.beats))
            time.sleep(0.05)

    def wait_until_quiet(self, quiet: float = 1.5) -> None:
        seen, since = -1, time.monotonic()
        while time.monotonic() - since < quiet:
            if len(self.beats) != seen:
                seen, since = len(self.beats), time.monotonic()
            time.sleep(0.05)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive()
        return self._result


def by_stream(scored) -> dict:
    out: dict[str, list] = {}
    for s in scored:
        out.setdefault(s.beat.stream, []).append((s.beat.sample, round(s.score, 4)))
    return out


def test_two_workers_find_and_score_the_same_beats_as_one_process(bundle):
    played = 30.0
    one = Hub(load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.fixed()))
    scored = []
    one.on_beats = scored.extend
    for i, (_, endpoint) in enumerate(single := boards(4, played)):
        one.add_board(endpoint.path, name=f"board{i}")
    play(one, single, speed=15)

    pool = WorkerPool(
        bundle, BridgeSettings(judging=Judging.fixed(), max_lag_s=60), workers=2, scorer_options={"threads": 1}
    )
    for i, (_, endpoint) in enumerate(pooled := boards(4, played)):
        pool.add_board(endpoint.path, name=f"board{i}")
    served = Served(pool)
    try:
        run_boards(pooled, speed=15, wait_reader=60, flow_control=True)
        served.wait_for(lambda: len(served.beats) >= len(scored))  # as many as one process found, however slow
        served.wait_until_quiet()
    finally:
        summary = served.stop()
        for _, endpoint in pooled:
            endpoint.close()
    assert by_stream(served.beats) == by_stream(scored) and len(by_stream(scored)) == 4
    assert summary["beats"] == len(scored) and summary["frames"] == sum(b.stats.frames for b, _ in pooled)
    assert [w["boards"] for w in summary["workers"]] == [["board0", "board2"], ["board1", "board3"]]
    assert summary["internal_errors"] == 0 and summary["latency_ms"]["p50"] is not None


@contextlib.contextmanager
def two_boards_on_two_workers(bundle, db, judging: Judging):
    """Two boards playing at 10x into a 2-worker pool that writes ``db``: yields (pool, served, summary).

    ``summary`` is filled when the block ends (players stopped, pool stopped, ptys closed).
    """
    settings = BridgeSettings(judging=judging, max_lag_s=60)
    pool = WorkerPool(bundle, settings, workers=2, scorer_options={"threads": 1}, restart_delay=0.2)
    pool.sinks.append(SqliteSink(db, pool.fs_of))
    played = boards(2, 120)
    for i, (_, endpoint) in enumerate(played):
        pool.add_board(endpoint.path, name=f"board{i}")
    served, stop, summary = Served(pool), threading.Event(), {}
    player = threading.Thread(target=run_boards, args=(played,), kwargs={"speed": 10, "stop": stop, "wait_reader": 60})
    player.start()
    try:
        yield pool, served, summary
    finally:
        stop.set()
        player.join(10)
        summary.update(served.stop())
        for _, endpoint in played:
            endpoint.close()


def test_a_killed_worker_is_reported_and_restarted_while_the_others_stream(bundle, tmp_path):
    """Its boards get worker-down / worker-up; the restarted worker judges by the thresholds learnt before (SQLite)."""

    def count(stream, since=0):
        return sum(s.beat.stream == stream for s in served.beats[since:])

    with two_boards_on_two_workers(bundle, tmp_path / "beats.db", Judging.calibrate(5)) as (pool, served, summary):
        served.wait_for(lambda: count("board0") >= 8 and count("board1") >= 8)
        victim = pool.slots[1].process.pid
        os.kill(victim, signal.SIGKILL)
        served.wait_for(lambda: any(e.name == "worker-down" for e in served.events))
        down_at = len(served.beats)
        served.wait_for(lambda: any(e.name == "worker-up" for e in served.events))
        up_at = len(served.beats)
        served.wait_for(lambda: count("board1", up_at) >= 3)
    worker_events = [(e.stream, e.name) for e in served.events if e.name.startswith("worker")]
    assert worker_events == [("board1", "worker-down"), ("board1", "worker-up")]
    down = next(e for e in served.events if e.name == "worker-down")
    assert f"worker 1 (pid {victim}) was killed by SIGKILL; restarting in 0.2 s" == down.detail
    assert count("board0", down_at) - count("board0", up_at) > 0  # board0 streamed through the outage
    learnt = {s.threshold for s in served.beats[:down_at] if s.beat.stream == "board1" and not s.learning}
    assert len(learnt) == 1 and {s.threshold for s in served.beats[up_at:] if s.beat.stream == "board1"} == learnt
    assert summary["workers"][1]["restarts"] == 1 and summary["workers"][1]["exit_codes"][0] == -signal.SIGKILL
    assert summary["workers"][0]["restarts"] == 0 and summary["events"]["worker-down"] == 1
    with sqlite3.connect(tmp_path / "beats.db") as db:
        assert db.execute("SELECT stream, COUNT(*) FROM beats WHERE threshold IS NULL GROUP BY stream").fetchall() == [
            ("board0", 5),
            ("board1", 5),
        ]
        assert db.execute("SELECT stream, event FROM events WHERE event LIKE 'worker%'").fetchall() == worker_events


def test_a_port_that_cannot_be_opened_stops_the_start_naming_it(bundle, tmp_path):
    good = PtyEndpoint()
    pool = WorkerPool(bundle, BridgeSettings(judging=Judging.fixed(), open_timeout=0.2), workers=2)
    pool.add_board(good.path, name="good")
    pool.add_board(str(tmp_path / "missing"), name="missing")
    try:
        with pytest.raises(PortError, match="cannot open port .*missing"):
            pool.run(duration=5)
    finally:
        good.close()
    assert all(not w.process.is_alive() for w in pool.slots)


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm", "duration"])
def test_bridge_cli_with_two_workers_keeps_stdout_json_and_exits_0(bundle, stop):
    played = boards(3, 600)
    cmd = [
        *ECGEDGE,
        "bridge",
        *[a for _, e in played for a in ("--port", e.path)],
        "--bundle",
        str(bundle),
        "--workers",
        "2",
        "--jsonl",
        "-",
    ]
    cmd += ["--duration", "4"] if stop == "duration" else []
    bridge = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    errors: list[str] = []  # stderr drained all along, so the bridge never waits on a full pipe
    draining = threading.Thread(target=lambda: errors.append(bridge.stderr.read()))
    draining.start()
    player = threading.Event()
    playing = threading.Thread(
        target=run_boards, args=(played,), kwargs={"speed": 10, "stop": player, "wait_reader": 60}
    )
    playing.start()
    rows = []
    try:
        for line in bridge.stdout:
            rows.append(json.loads(line))  # every line of stdout is JSON
            if {r["stream"] for r in rows if "score" in r} == {"board0", "board1", "board2"}:
                break
        if stop == "ctrl-c":
            os.killpg(bridge.pid, signal.SIGINT)  # the whole process group, workers included, as a terminal does
        elif stop == "sigterm":
            bridge.terminate()  # the bridge alone, as a service manager does
        # the rest of stdout through the same reader: lines it has read ahead are not lost (communicate() would)
        out = bridge.stdout.read()
        bridge.wait(timeout=60)
        draining.join(60)
        err = "".join(errors)
    finally:
        bridge.kill()
        player.set()
        playing.join(10)
        for _, endpoint in played:
            endpoint.close()
    assert bridge.returncode == 0, err
    rows += [json.loads(line) for line in out.splitlines()]
    assert [r["event"] for r in rows if "event" in r][:3] == ["link-up"] * 3
    assert "bridge: 3 board(s) in 2 worker processes" in err and "EVENT " in err and "Traceback" not in err
    summary = json.loads(err.split("summary-json: ")[1])
    assert summary["beats"] == sum("score" in r for r in rows) and [w["exit_codes"] for w in summary["workers"]] == [
        [0],
        [0],
    ]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its new parent to reap it does not)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line for line in status)
    except FileNotFoundError:
        return False


def test_workers_end_when_the_bridge_is_killed(bundle):
    """No orphan worker keeps reading a board after a kill -9 of the bridge (a restarted one would share its ports)."""
    played = boards(2, 600)
    cmd = [
        *ECGEDGE,
        "bridge",
        *[a for _, e in played for a in ("--port", e.path)],
        "--bundle",
        str(bundle),
        "--workers",
        "2",
        "--all-beats",
    ]
    bridge = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stop = threading.Event()
    player = threading.Thread(target=run_boards, args=(played,), kwargs={"speed": 10, "stop": stop, "wait_reader": 60})
    player.start()
    try:
        bridge.stdout.readline()  # a beat: the workers serve
        with open(f"/proc/{bridge.pid}/task/{bridge.pid}/children") as children:
            workers = [int(pid) for pid in children.read().split()]
        bridge.kill()
        bridge.wait(10)
        give_up = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < give_up:
            time.sleep(0.05)
    finally:
        stop.set()
        player.join(10)
        for _, endpoint in played:
            endpoint.close()
    assert len(workers) >= 2 and not any(map(_alive, workers))


def test_a_restarted_worker_resumes_its_patients_memory_from_the_parents_database(bundle, tmp_path):
    def adapted(stream, since=0):
        return sum(s.beat.stream == stream and s.verdict.mode == "adapted" for s in served.beats[since:])

    with two_boards_on_two_workers(bundle, tmp_path / "beats.db", Judging.adapt(5)) as (pool, served, _):
        served.wait_for(lambda: adapted("board1") >= 3)
        os.kill(pool.slots[1].process.pid, signal.SIGKILL)
        served.wait_for(lambda: any(e.name == "worker-up" for e in served.events))
        up_at = len(served.beats)
        served.wait_for(lambda: adapted("board1", up_at) >= 3)
    after = [s.verdict.mode for s in served.beats[up_at:] if s.beat.stream == "board1"]
    assert after and set(after) == {"adapted"}  # judged by the saved memory from its first beat: no relearning
    with sqlite3.connect(tmp_path / "beats.db") as db:
        assert db.execute("SELECT stream FROM patients ORDER BY stream").fetchall() == [("board0",), ("board1",)]
