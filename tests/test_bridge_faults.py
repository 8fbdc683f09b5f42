"""No board can take the bridge down, and the bridge says when it is not monitoring.

Each hostile or broken board plays over a real pty into one real Hub with a
real exported bundle, next to a good board playing MIT-BIH record 100; the
good board's beats must keep flowing, the hostile board alone goes into a
reported condition (an event in the sinks) and recovers on sane data.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from fixtures.bridge_support import play, tiny_bundle

from ecgedge.analysis.streams import FilterStage
from ecgedge.beatformat import BeatFormat
from ecgedge.datasets import load_wfdb_record
from ecgedge.firmware_bridge.core import BridgeCore
from ecgedge.firmware_bridge.decoder import AsciiDecoder, FrameDecoder, LinkStats
from ecgedge.firmware_bridge.hub import Hub
from ecgedge.firmware_bridge.links import BoardHello, BoardSamples
from ecgedge.firmware_bridge.pipeline import WALL_OFFSET, StreamPipeline
from ecgedge.firmware_bridge.protocol import Hello, Samples, encode_frame
from ecgedge.firmware_bridge.settings import BoardSpec, BridgeSettings, Judging
from ecgedge.firmware_bridge.simulator import PtyEndpoint, ScriptedBoard, VirtualBoard, run_boards
from ecgedge.firmware_bridge.sinks import JsonlSink, SqliteSink
from ecgedge.firmware_bridge.source import PortError
from ecgedge.firmware_bridge.writer import CommitWriter, kept_of
from ecgedge.runtime import load_scorer

#: Seconds a wait may take before the test calls it a hang (a loaded machine is slow, never this slow).
HANG_S = 60.0
FS = 360
ECGEDGE = [sys.executable, "-c", "from ecgedge.cli import main; main()"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def record():
    return load_wfdb_record(lead="MLII")


class Frames:
    """Build a board's frames: a HELLO every second, then blocks of 10 samples, indices continuing."""

    def __init__(self, record) -> None:
        self.adc = record.to_adc()
        self.seq = 0
        self.index = 0

    def frame(self, message) -> bytes:
        self.seq += 1
        return encode_frame(message, self.seq)

    def stream(self, seconds: float, hello: Hello, values=None, fs: float = FS, at_s: float = 0.0) -> list[bytes]:
        """``seconds`` of record 100 (or of ``values(block_of_counts)``), announced by ``hello``."""
        out = []
        start = int(at_s * FS)
        for k, first in enumerate(range(start, start + int(seconds * fs), 10)):
            block = self.adc[first : first + 10, None]
            block = block if values is None else values(block)
            head = self.frame(hello) if k % round(fs / 10) == 0 else b""
            out.append(head + self.frame(Samples(self.index, block.astype(np.int16))))
            self.index += len(block)
        return out


def hello(fs=FS, gain=200.0, leads=("MLII",), baseline=1024) -> Hello:
    return Hello(fs, 11, gain, baseline, leads, (1, 0, 0))


def beats_after(beats: list, stream: str, t: float) -> int:
    return sum(1 for b in beats if b.stream == stream and b.time > t)


def events_of(events: list, stream: str) -> list:
    return [e for e in events if e.stream == stream]


def test_hostile_boards_and_misconfigured_leads_stop_only_their_own_stream(bundle, record):
    hub = Hub(
        load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.fixed(), max_lag_s=60)
    )  # however loaded the machine, shed nothing here
    beats, events = [], []
    hub.on_beats = lambda scored: beats.extend(s.beat for s in scored)
    hub.on_event = events.append
    scripts: dict[str, tuple[list[bytes], dict]] = {}

    def script(name: str, **board):
        frames = Frames(record)
        scripts[name] = ([], board)
        return frames, scripts[name][0]

    good = VirtualBoard.from_record(duration_s=60)
    for name, bad in (
        ("fs50", hello(fs=50.0)),
        ("tiny-gain", hello(gain=1e-40)),
        ("nan-gain", hello(gain=float("nan"))),
        ("inf-gain", hello(gain=float("inf"))),
    ):
        f, out = script(name)
        out += f.stream(6, bad) + f.stream(25, hello(), at_s=6)
    f, out = script("empty-jump")
    out += f.stream(8, hello())
    out.append(f.frame(Samples(f.index + 10**6, np.zeros((0, 1), np.int16))))
    out += f.stream(20, hello(), at_s=8)
    f, out = script("new-fs-in-one-read")
    out += f.stream(8, hello())
    switch = f.stream(0.03, hello())[-1]
    f.index = 0
    out.append(switch + b"".join(f.stream(0.03, hello(fs=250.0), fs=250)))
    out += f.stream(25, hello(fs=250.0), fs=250, at_s=8)
    f, out = script("missing-lead", lead="V5")
    out += f.stream(6, hello()) + f.stream(25, hello(leads=("MLII", "V5")), values=lambda b: np.hstack((b, b)), at_s=6)
    f, out = script("one-lead-samples", lead="V1")
    out += f.stream(6, hello(leads=("V1", "V2"))) + f.stream(
        25, hello(leads=("V1", "V2")), values=lambda b: np.hstack((b, b)), at_s=6
    )
    f, out = script("never-says-hello")
    out += [
        c.split(b"\x00", 1)[1] if c.count(b"\x00") == 2 else c for c in f.stream(40, hello())
    ]  # every HELLO left out (4 s)
    out += f.stream(20, hello(), at_s=40)
    ascii_lines = [
        b"".join(b"%d\r\n" % v for v in record.to_adc()[i : i + 10]) + (b"99999999999\r\n" if i % 500 == 0 else b"")
        for i in range(0, 30 * FS, 10)
    ]

    boards = [(good, PtyEndpoint())]
    hub.add_board(boards[0][1].path, name="good")
    for name, (chunks, options) in scripts.items():
        endpoint = PtyEndpoint()
        hub.add_board(endpoint.path, name=name, **options)
        boards.append((ScriptedBoard(chunks), endpoint))
    endpoint = PtyEndpoint()
    hub.add_board(endpoint.path, name="ascii-int64", fmt="ascii", fs=FS, baseline=record.baseline)
    boards.append((ScriptedBoard(ascii_lines), endpoint))
    summary = play(hub, boards, speed=10)

    assert summary["internal_errors"] == 0
    good_samples = sorted(b.sample for b in beats if b.stream == "good")
    # never a pause in the good stream
    assert len(good_samples) > 40 and np.diff(good_samples).max() < 2 * FS, (
        good_samples,
        summary["links"]["good"],
        good.stats,
    )
    expected = {
        "fs50": "sample rate 50.0 Hz",
        "tiny-gain": "HELLO gain 9.99",
        "nan-gain": "gain nan",
        "inf-gain": "gain inf",
        "missing-lead": "lead 'V5' is not among",
        "one-lead-samples": "shape (10, 1)",
        "never-says-hello": "no usable HELLO for",
    }
    for name, words in expected.items():
        mine = events_of(events, name)
        raised = [e for e in mine if e.name == "board-error"]
        recovered = [e for e in mine if e.name == "board-ok"]
        assert raised and words in raised[0].detail, (name, [str(e) for e in mine])
        assert recovered and recovered[0].time > raised[0].time, (name, [str(e) for e in mine])
        assert beats_after(beats, name, recovered[0].time - 1.5) > 5, name  # beats again on sane data
    for name in ("empty-jump", "new-fs-in-one-read", "ascii-int64"):
        assert not [e for e in events_of(events, name) if e.name == "board-error"], name
        assert sum(b.stream == name for b in beats) > 15, name
    assert summary["links"]["ascii-int64"]["corrupt"]["ascii-range"] == len(range(0, 30 * FS, 500))
    assert summary["links"]["one-lead-samples"]["rejected_samples"] >= 5 * FS


def test_configuration_mistakes_are_refused_at_start_naming_the_problem(bundle, tmp_path):
    hub = Hub(load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.fixed()))
    with pytest.raises(ValueError, match="baseline 100000000000"):
        hub.add_board("loop://", fmt="ascii", fs=FS, baseline=100_000_000_000)
    endpoint = PtyEndpoint(link=tmp_path / "board")
    hub.add_board(endpoint.path, name="a")
    with pytest.raises(ValueError, match="given twice"):
        hub.add_board(endpoint._slave_path, name="b")  # the same pty through another name
    endpoint.close()
    result = subprocess.run(
        [
            *ECGEDGE,
            "bridge",
            "--port",
            "loop://",
            "--bundle",
            str(bundle),
            "--format",
            "ascii",
            "--fs",
            "360",
            "--baseline",
            "100000000000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "--baseline" in result.stderr


def refused_socket() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"socket://127.0.0.1:{s.getsockname()[1]}"  # nobody listens once closed


def test_ports_that_cannot_be_opened_stop_the_start_naming_each(bundle, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "locked").touch(mode=0o000)
    bad = {
        "missing": str(tmp_path / "ttyUSB9"),
        "regular file": str(tmp_path / "file"),
        "directory": str(tmp_path),
        "refused socket": refused_socket(),
    }
    if os.geteuid() != 0:  # root opens any file
        bad["permission denied"] = str(tmp_path / "locked")
    hub = Hub(load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.fixed(), open_timeout=0.3))
    for url in bad.values():
        hub.add_board(url, name=url)
    with pytest.raises(PortError) as info:
        hub.run(duration=1)
    for url in bad.values():
        assert f"cannot open port {url}" in str(info.value)
    assert "regular file, not a serial device" in str(info.value) and "is a directory" in str(info.value)
    ports = [arg for url in bad.values() for arg in ("--port", url)]
    result = subprocess.run(
        [*ECGEDGE, "bridge", *ports, "--bundle", str(bundle), "--open-timeout", "0.3", "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and all(f"cannot open port {url}" in result.stderr for url in bad.values()), (
        result.stderr
    )


def test_lost_signal_no_beats_and_garbage_are_events_in_every_sink(bundle, record, tmp_path):
    hub = Hub(load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.fixed(), no_beats_s=4.0, no_data_s=1.0))
    hub.sinks += [JsonlSink(tmp_path / "out.jsonl"), SqliteSink(tmp_path / "out.db", hub.fs_of)]
    rails = np.array([-(2**15), 2**15 - 1])

    def stuck(block):
        block = block.copy()
        block[::10] = -(2**15)  # every 10th sample stuck at the rail
        return block

    faults = {
        "flat": lambda b: np.full_like(b, 1024),
        "saturated": lambda b: np.full_like(b, 2**15 - 1),
        "alternating": lambda b: rails[np.arange(len(b)) % 2][:, None],
        "stuck": stuck,
    }
    boards = []
    for name, fault in faults.items():
        f = Frames(record)
        chunks = f.stream(8, hello()) + f.stream(10, hello(), values=fault, at_s=8) + f.stream(12, hello(), at_s=18)
        endpoint = PtyEndpoint()
        hub.add_board(endpoint.path, name=name)
        boards.append((ScriptedBoard(chunks), endpoint))
    endpoint = PtyEndpoint()
    hub.add_board(endpoint.path, name="zeros")
    boards.append((ScriptedBoard([bytes(4096)] * 300, per_frame=10), endpoint))  # 1.2 MB of 0x00 over 3 s
    summary = play(hub, boards, speed=5)

    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    events = [r for r in lines if "event" in r]
    with sqlite3.connect(tmp_path / "out.db") as db:
        stored = db.execute("SELECT stream, event, detail, time FROM events ORDER BY id").fetchall()
    assert [(e["stream"], e["event"], e["detail"]) for e in events] == [row[:3] for row in stored]
    assert all(abs(e["time"] - t) < 1e-3 for e, (*_, t) in zip(events, stored, strict=True))

    def named(stream, event):
        return [e for e in events if e["stream"] == stream and e["event"] == event]

    causes = {
        "flat": "every sample the same count",
        "saturated": "saturated",
        "alternating": "saturated",
        "stuck": "10 % of samples at an ADC rail",
    }
    for name, cause in causes.items():
        assert named(name, "no-signal") and cause in named(name, "no-signal")[0]["detail"], (name, events)
        assert named(name, "signal-back"), name
    assert named("flat", "no-beats") and named("flat", "beats-back")
    # 10 s without a reading of the heart (a still line, the rails) are no asystole; after "stuck" the
    # R-peak detector, its thresholds raised by the rail spikes, takes over 4 s of signal to find beats again
    assert not any(named(name, "asystole") for name in ("flat", "saturated", "alternating"))
    # all that the pty took (it refuses some writes when full) is counted as garbage
    assert (
        1_000_000 < summary["links"]["zeros"]["garbage_bytes"] <= 300 * 4096
        and summary["links"]["zeros"]["frames"] == 0
    )
    assert named("zeros", "no-data") and "garbage bytes" in named("zeros", "no-data")[0]["detail"]
    assert summary["events"]["no-signal"] == 4 and summary["internal_errors"] == 0


def test_bridge_cli_with_a_hostile_board_exits_0_and_stdout_stays_json(bundle, record):
    good, bad = PtyEndpoint(), PtyEndpoint()
    f = Frames(record)
    hostile = (
        f.stream(3, hello(fs=50.0))
        + [bytes(2000)]
        + f.stream(3, hello(gain=1e-40), at_s=3)
        + f.stream(30, hello(), at_s=6)
    )
    boards = [(VirtualBoard.from_record(duration_s=120), good), (ScriptedBoard(hostile), bad)]
    cmd = [
        *ECGEDGE,
        "bridge",
        "--port",
        good.path,
        "--port",
        bad.path,
        "--bundle",
        str(bundle),
        "--jsonl",
        "-",
        "--duration",
        "8",
    ]
    bridge = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    player = threading.Thread(target=run_boards, args=(boards,), kwargs={"speed": 10, "stop": stop, "wait_reader": 30})
    player.start()
    try:
        out, err = bridge.communicate(timeout=90)
    finally:
        stop.set()
        player.join(10)
        good.close()
        bad.close()
    assert bridge.returncode == 0, err
    rows = [json.loads(line) for line in out.splitlines()]  # every line of stdout is JSON
    assert sum(r.get("stream") == "board0" and "score" in r for r in rows) > 50
    assert any(r.get("event") == "board-error" and r["stream"] == "board1" for r in rows)
    assert "EVENT " in err and "board1 board-error: HELLO sample rate 50.0 Hz" in err and "summary-json: " in err


def test_simulate_stops_promptly_on_sigterm_while_waiting_for_a_reader():
    sim = subprocess.Popen(
        [*ECGEDGE, "simulate", "--pty", "--duration", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert sim.stdout.readline().startswith("port: ")
        sim.send_signal(signal.SIGTERM)
        out, _ = sim.communicate(timeout=10)  # it once waited 30 s for a reader first
    finally:
        sim.kill()
    assert sim.returncode == 0 and "simulate: " in out


def test_decoders_survive_a_flood_of_delimiters_and_ascii_overflow():
    stats = LinkStats()
    decoder = FrameDecoder(None, stats)
    decoder.data_received(bytes(256 * 1024))
    assert stats.frames == 0 and stats.garbage_bytes == 256 * 1024  # shown, no longer "frames 0, dropped 0"
    got = []

    class Listener:
        def samples(self, first, values, t):
            got.append(values)

        def status(self, status):
            pass

    stats = LinkStats()
    decoder = AsciiDecoder(Listener(), stats)
    decoder.data_received(b"\n12\n99999999999999999999\n-2147483649\n2147483647\n7\n")
    assert stats.corrupt["ascii-range"] == 2 and [v.ravel().tolist() for v in got] == [[12], [2147483647, 7]]


def test_alternating_hellos_reuse_filter_rows(record):
    stage = FilterStage()
    pipeline = StreamPipeline("p", BeatFormat(140))
    adc = record.to_adc()
    for i in range(400):
        fs = (FS, 250.0)[i % 2]
        pipeline.configure(hello(fs=fs))
        pipeline.push(0, adc[i * 10 : i * 10 + 10, None], 0.0)
        stage.run([pipeline])
    assert stage.rows == {250.0: 1}  # one row in use (it was 200 per rate); the 360 Hz bank was given back and dropped


def test_a_board_reset_never_sends_beat_times_backwards(record):
    """The board's index restarts at 0 mid-stream; beat times keep increasing and match when the R wave came."""
    pipeline = StreamPipeline("p", BeatFormat(140))
    pipeline.configure(hello())
    stage = FilterStage()
    adc = record.to_adc()[: 80 * FS]
    t0, reset_at = 1000.0, 40 * FS
    beats = []
    for k in range(0, adc.size, 10):
        index = k if k < reset_at else k - reset_at  # the board restarted: indices from 0 again
        pipeline.push(index, adc[k : k + 10, None], t0 + (k + 9) / FS)  # read the moment its last sample was taken
        beats += [(b, k >= reset_at) for b in stage.run([pipeline])[0]]
    times = np.array([b.time for b, _ in beats])
    assert np.all(np.diff(times) > 0)
    after = [b for b, reset in beats if reset]
    assert len(after) > 30
    true_time = np.array([WALL_OFFSET + t0 + (b.sample + reset_at) / FS for b in after])
    assert np.abs(np.array([b.time for b in after]) - true_time).max() < 0.05


def test_blocks_too_far_behind_are_shed_and_counted(bundle, record):
    """The overload policy: a block that waited more than max_lag_s for the hub is shed, and the stream says so.

    The board started 20 s ago and every block was read in time, but the hub
    handles them only now: all but those of the last second are shed.
    """
    events = []
    writer = CommitWriter(on_event=events.append)
    core = BridgeCore(load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.fixed(), max_lag_s=1.0), writer)
    counters = core.add_stream(BoardSpec("loop://", "late")).counters
    core.start()
    adc = record.to_adc()
    start = time.perf_counter() - 20.0
    core.handle([BoardHello("late", hello())], time.perf_counter())
    blocks = [BoardSamples("late", k, adc[k : k + 10, None], start + (k + 9) / FS) for k in range(0, 20 * FS, 10)]
    core.handle(blocks, time.perf_counter())
    late = time.perf_counter() - start - 20.0  # how much later than planned the core saw them, on this machine
    # the blocks older than max_lag_s when the core handled them: 19 s of them, and what the handling's delay adds
    assert 19 * FS - 10 <= counters.shed_samples <= (19 + late) * FS + 10
    assert counters.samples + counters.shed_samples == 20 * FS
    assert events[0].name == "overload" and "behind" in events[0].detail
    assert [e.name for e in events[1:]] == ["no-beats"]  # 19 s shed: not monitored, and said so
    assert writer.counters()["events"] == {"no-beats": 1, "overload": 1}


def test_a_full_queue_makes_the_reader_wait_and_bounds_memory(bundle):
    hub = Hub(load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.fixed(), max_queue=8))
    link = hub.add_board("loop://")
    block = np.zeros((10, 1), np.int16)
    handed = []  # blocks the reader got past the queue

    def read_20_blocks() -> None:
        for i in range(20):
            link.samples(10 * i, block, 0.0)
            handed.append(i)

    def full(n: int) -> bool:
        return hub.queued == 8 and len(handed) == n

    writer = threading.Thread(target=read_20_blocks)
    writer.start()
    for n in (8, 16):  # backpressure: the reader waits at a full queue, however long the hub takes
        deadline = time.monotonic() + HANG_S
        while not full(n):
            assert time.monotonic() < deadline, (hub.queued, len(handed))
            time.sleep(0.01)
        writer.join(0.5)  # a reader that dropped blocks instead of waiting would be through them by now
        assert writer.is_alive() and full(n)
        hub.step()
    link.closing = True  # the hub stops: the reader gives up instead of waiting for ever
    writer.join(HANG_S)
    assert not writer.is_alive()


def test_a_restart_after_kill_9_resumes_each_patients_learnt_threshold(bundle, tmp_path):
    """The SQLite database is the patient's state.

    A restarted bridge flags from its first beat, with the threshold it learnt before.
    """
    db = tmp_path / "alerts.db"
    endpoint = PtyEndpoint(link=tmp_path / "board")
    cmd = [
        *ECGEDGE,
        "bridge",
        "--port",
        str(tmp_path / "board"),
        "--bundle",
        str(bundle),
        "--db",
        str(db),
        "--all-beats",
        "--calibrate",
        "10",
    ]
    stop = threading.Event()
    player = threading.Thread(
        target=run_boards,
        args=([(VirtualBoard.from_record(duration_s=1200), endpoint)],),
        kwargs={"speed": 30, "stop": stop, "wait_reader": 60},
    )
    runs = []
    try:
        for lines_wanted in (20, 5):
            bridge = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            if not player.is_alive():
                player.start()
            printed = []
            for line in bridge.stdout:
                if line.startswith(("beat ", "FLAG ")):
                    printed.append(line.split())
                if len(printed) == lines_wanted:
                    bridge.kill()  # SIGKILL, mid-stream
                    break
            bridge.wait(10)
            runs.append(printed)
    finally:
        stop.set()
        player.join(10)
        endpoint.close()
    threshold = lambda p: p[-1].split("=")[-1]  # noqa: E731
    first, second = runs
    assert [threshold(p) for p in first[:10]] == ["learning"] * 10
    learnt = {threshold(p) for p in first[10:]}
    assert len(learnt) == 1 and learnt != {"learning"}
    assert {threshold(p) for p in second} == learnt  # no relearning: judged from the first beat after the restart
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM beats WHERE threshold IS NULL").fetchone()[0] == 10


def test_a_restarted_hub_resumes_each_patients_memory_from_sqlite(bundle, record, tmp_path):
    """Adaptation survives a restart: the memory is in the database, so the new hub judges from its first beat."""
    db, adc = tmp_path / "patients.db", record.to_adc()
    start = time.perf_counter()

    def serve(sink, on_beats, first_s, seconds):
        """A bridge's core writing ``sink``, resumed from it, fed ``seconds`` of the record."""
        settings = BridgeSettings(judging=Judging.adapt(20))
        core = BridgeCore(load_scorer(bundle, threads=1), settings, CommitWriter([sink], on_beats=on_beats))
        core.add_stream(BoardSpec("loop://", "bed1"))
        core.start(kept_of([sink], ["bed1"], settings.judging))
        core.handle([BoardHello("bed1", hello())], time.perf_counter())
        blocks = range(first_s * FS, (first_s + seconds) * FS, 36)
        core.handle([BoardSamples("bed1", k, adc[k : k + 36, None], start + (k + 35) / FS) for k in blocks], start)
        return core

    scored = []
    first = serve(SqliteSink(db, lambda stream: FS), scored.extend, 0, 40)
    first.writer.close()  # as a kill -9 leaves it: every committed batch is in the file
    assert [s.verdict.mode for s in scored][:5] == ["learning"] * 5 and scored[-1].verdict.mode == "adapted"
    assert first.summary()["adapted_streams"] == ["bed1"]

    again = []
    second = serve(sink := SqliteSink(db, lambda stream: FS), again.extend, 40, 20)
    assert second.summary()["resumed_patients"] == ["bed1"]
    assert again and {s.verdict.mode for s in again} == {"adapted"}  # no relearning
    saved = sink.patient_state("bed1")
    np.testing.assert_array_equal(saved["shape_limit"], first.judges["bed1"].memory.shape_limit)
    sink.close()
    with sqlite3.connect(db) as conn:
        modes = dict(conn.execute("SELECT mode, COUNT(*) FROM beats GROUP BY mode").fetchall())
    assert set(modes) == {"learning", "adapted"} and modes["learning"] == sum(s.learning for s in scored)
