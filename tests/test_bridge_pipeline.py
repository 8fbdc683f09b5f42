"""Board -> bridge end to end over real ptys and sockets, with a real exported bundle.

Record 100 is streamed at high speed; beats found by the bridge are checked
against the cardiologists' annotations (wfdb.processing.compare_annotations,
150 ms window).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import wfdb.processing
from fixtures.bridge_support import play, tiny_bundle

from ecgedge.datasets import load_wfdb_record
from ecgedge.firmware_bridge.hub import Hub
from ecgedge.firmware_bridge.settings import BridgeSettings, Judging
from ecgedge.firmware_bridge.simulator import PtyEndpoint, TcpEndpoint, VirtualBoard, run_boards
from ecgedge.firmware_bridge.sinks import JsonlSink, SqliteSink
from ecgedge.runtime import load_scorer

FS = 360
#: Seconds a wait may take before the test calls it a hang (a loaded machine is slow, never this slow).
HANG_S = 60.0


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def record():
    return load_wfdb_record(lead="MLII")


def accuracy(record, samples, start_s: float, end_s: float):
    """Se and +P of detected R peaks against the reference beats in [start_s, end_s)."""
    ref = record.beat_samples
    ref = ref[(ref >= start_s * FS) & (ref < end_s * FS)]
    det = np.asarray(sorted(samples), dtype=np.int64)
    det = det[(det >= start_s * FS) & (det < end_s * FS)]
    return wfdb.processing.compare_annotations(ref, det, int(0.15 * FS))


def test_record_100_through_a_pty_detects_beats_and_logs_them(bundle, record, tmp_path):
    minutes = 4
    hub = Hub(load_scorer(bundle, precision="int8", threads=1), BridgeSettings(judging=Judging.fixed()))
    endpoint = PtyEndpoint()
    hub.add_board(endpoint.path, name="bed1")
    hub.sinks += [JsonlSink(tmp_path / "beats.jsonl"), SqliteSink(tmp_path / "beats.db", hub.fs_of)]
    summary = play(hub, [(VirtualBoard.from_record(duration_s=60 * minutes), endpoint)], speed=60)
    lines = [json.loads(line) for line in (tmp_path / "beats.jsonl").read_text().splitlines()]
    rows = [r for r in lines if "event" not in r]
    assert {"stream", "sample", "time", "score", "anomaly"} <= set(rows[0])
    assert [r["event"] for r in lines if "event" in r][0] == "link-up"
    # the first seconds teach the R-peak detector its levels; the last second cannot complete a window
    c = accuracy(record, [r["sample"] for r in rows], 3, 60 * minutes - 1)
    assert c.sensitivity >= 0.995 and c.positive_predictivity >= 0.995, (
        c.sensitivity,
        c.positive_predictivity,
        c.unmatched_ref_sample,
        summary,
    )
    assert summary["beats"] == len(rows) and summary["frames_dropped"] == 0 and summary["frames_lost"] == 0
    with sqlite3.connect(tmp_path / "beats.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM beats").fetchone()[0] == len(rows)
        n_anomalies = db.execute("SELECT COUNT(*) FROM beats WHERE anomaly = 1").fetchone()[0]
        waves = db.execute("SELECT LENGTH(model_input) FROM anomalies").fetchall()
        assert db.execute("SELECT event FROM events ORDER BY id").fetchone() == ("link-up",)
    assert n_anomalies == sum(r["anomaly"] for r in rows) == len(waves)
    assert all(length == 4 * 140 for (length,) in waves)


def test_corrupt_and_dropped_frames_are_counted_and_detection_survives(bundle, record):
    hub = Hub(load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.fixed()))
    endpoint = PtyEndpoint()
    link = hub.add_board(endpoint.path)
    board = VirtualBoard.from_record(duration_s=180, corrupt_rate=1e-4, drop_rate=2e-3, seed=3)
    samples = []
    hub.on_beats = lambda scored: samples.extend(s.beat.sample for s in scored)
    play(hub, [(board, endpoint)], speed=60)
    assert board.stats.damaged > 0 and board.stats.dropped > 0 and board.stats.overruns == 0
    # every damaged frame dropped and counted (a bit error that makes a 0x00 splits one frame in two)
    assert link.stats.dropped == board.stats.damaged + board.stats.splits
    assert link.stats.lost == board.stats.damaged + board.stats.dropped
    # lost frames are short gaps: filled, detection never restarted
    assert 0 < hub.core.pipelines[link.name].counters.gap_samples <= 10 * link.stats.lost
    assert hub.core.pipelines[link.name].counters.restarts == 1
    c = accuracy(record, samples, 3, 179)
    assert c.sensitivity >= 0.99 and c.positive_predictivity >= 0.99


def until(get, above: int, what: str, timeout: float = HANG_S) -> None:
    """Wait until ``get() > above``; fail naming ``what`` only after ``timeout`` s (a hang, not a slow machine)."""
    deadline = time.monotonic() + timeout
    while not get() > above:
        assert time.monotonic() < deadline, f"still waiting after {timeout:g} s for {what}"
        time.sleep(0.02)


def test_a_socket_board_unplugged_and_plugged_back_again_and_again_resumes_each_time(bundle):
    """Each unplug is a link-down event, each replug a link-up, and beats come again after every one."""
    hub = Hub(load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.fixed()))
    endpoint = TcpEndpoint()
    link = hub.add_board(endpoint.url)
    samples, events = [], []
    hub.on_beats = lambda scored: samples.extend(s.beat.sample for s in scored)
    hub.on_event = events.append
    count = lambda name: sum(e.name == name for e in list(events))  # noqa: E731
    board, stop, summary = VirtualBoard.from_record(duration_s=1800), threading.Event(), {}
    player = threading.Thread(target=lambda: summary.update(play(hub, [(board, endpoint)], speed=20, stop=stop)))
    player.start()
    try:
        for cycle in range(3):
            # no beat comes unplugged: those that come now are the (re)plugged board's
            until(lambda: len(samples), len(samples) + 4, f"5 beats before unplug {cycle}")
            downs, ups = count("link-down"), count("link-up")
            endpoint.disconnect()  # unplug: the link drops and connections are refused for a while
            until(lambda: count("link-down"), downs, f"the link-down event of unplug {cycle}")
            # the bridge's retries meanwhile may reach the listening socket (and count as a link-up) before the
            # endpoint refuses them, so any link-up since the unplug counts; beats after it show the link is real
            time.sleep(0.3)
            endpoint.reconnect()
            until(lambda: count("link-up"), ups, f"the link-up event of replug {cycle}")
        until(lambda: len(samples), len(samples) + 4, "5 beats after the last replug")
    finally:
        stop.set()
        player.join(HANG_S)
    assert not player.is_alive() and summary["events"]["link-down"] >= 3 and summary["events"]["link-up"] >= 4
    assert len(link.source.reconnects) >= 3


def test_several_boards_in_one_process_are_scored_together(bundle, record):
    hub = Hub(load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.fixed()))
    batches = []
    hub.on_beats = lambda scored: batches.append({s.beat.stream for s in scored})
    boards = []
    for i in range(4):
        endpoint = PtyEndpoint()
        hub.add_board(endpoint.path, name=f"bed{i}")
        boards.append((VirtualBoard.from_record(start_s=30 * i, duration_s=60), endpoint))
    summary = play(hub, boards, speed=30)
    per_stream = {name: link["frames"] for name, link in summary["links"].items()}
    assert len(per_stream) == 4 and len(set(per_stream.values())) == 1
    assert summary["frames_dropped"] == summary["frames_lost"] == 0
    assert any(len(streams) > 1 for streams in batches)  # micro-batches mix streams
    assert summary["beats"] > 4 * 60, {k: summary[k] for k in ("shed_samples", "shed_beats", "warmup_beats", "events")}


def test_kill_9_loses_no_committed_beat(bundle, tmp_path):
    endpoint = PtyEndpoint()
    db = tmp_path / "alerts.db"
    cmd = [
        sys.executable,
        "-c",
        "from ecgedge.cli import main; main()",
        "bridge",
        "--port",
        endpoint.path,
        "--bundle",
        str(bundle),
        "--db",
        str(db),
        "--all-beats",
    ]
    bridge = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stop = threading.Event()
    player = threading.Thread(
        target=run_boards,
        args=([(VirtualBoard.from_record(duration_s=600), endpoint)],),
        kwargs={"speed": 30, "stop": stop},
    )
    player.start()
    printed = []
    try:
        for line in bridge.stdout:
            printed.append(line.split())
            if len(printed) == 60:
                bridge.kill()  # SIGKILL, mid-stream
                break
        bridge.wait(10)
    finally:
        stop.set()
        player.join(10)
        endpoint.close()
    assert bridge.returncode == -9
    with sqlite3.connect(db) as conn:
        stored = set(conn.execute("SELECT sample, anomaly FROM beats").fetchall())
        flagged_with_wave = {
            s for (s,) in conn.execute("SELECT sample FROM beats JOIN anomalies ON beat_id = beats.id")
        }
    shown = {(int(p[2].split("=")[1]), int(p[0] == "FLAG")) for p in printed}
    assert len(shown) == 60 and shown <= stored  # every beat reported was committed first
    assert {s for s, flag in shown if flag} <= flagged_with_wave


def test_bridge_does_not_import_torch_or_sklearn():
    code = (
        "import sys, importlib, pkgutil, ecgedge.firmware_bridge as fb\n"
        "for m in pkgutil.iter_modules(fb.__path__): importlib.import_module(f'ecgedge.firmware_bridge.{m.name}')\n"
        "import ecgedge.runtime\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def feed(pipeline, adc, events, per_frame=10):
    """Push record ADC counts frame by frame through one pipeline; ``events`` maps a frame
    start to "drop" (frame lost) or a Status to deliver before it. Returns the beats."""
    from ecgedge.analysis.streams import FilterStage

    stage, beats = FilterStage(), []
    for first in range(0, adc.size, per_frame):
        event = events.get(first)
        if event == "drop":
            continue
        if event is not None:
            pipeline.status(event)
        pipeline.push(first, adc[first : first + per_frame, None], 0.0)
        new, failures = stage.run([pipeline])
        assert failures == []
        beats += new
    return beats


def test_pipeline_fills_short_gaps_and_restarts_after_lead_off(record):
    from ecgedge.beatformat import BeatFormat
    from ecgedge.firmware_bridge.pipeline import StreamPipeline
    from ecgedge.firmware_bridge.protocol import LEAD_OFF_PLUS, Hello, Status

    adc = record.to_adc()[: 120 * FS]
    pipeline = StreamPipeline("p", BeatFormat(140))
    pipeline.configure(Hello(FS, 11, record.adc_gain, record.baseline, ("MLII",)))
    lost, off, on = 30 * FS, 60 * FS, 65 * FS
    events = {lost: "drop", lost + 10: "drop", off: Status(off, LEAD_OFF_PLUS), on: Status(on, 0)}
    beats = feed(pipeline, adc, events)
    assert pipeline.counters.gap_samples == 20 and pipeline.counters.restarts == 2
    assert pipeline.counters.lead_off_samples == on - off
    gapped = [b for b in beats if b.gap]
    assert gapped and all(b.window_start <= lost + 19 and b.last_sample >= lost for b in gapped)
    assert not any(off <= b.sample < on for b in beats)  # nothing made of lead-off noise
    c = accuracy(record, [b.sample for b in beats], 3, 119)
    missed = set(c.unmatched_ref_sample.tolist()) if c.fn else set()
    assert all(off - 2 * FS <= m < on + 3 * FS for m in missed)  # only around the lead-off


def test_auto_polarity_finds_the_r_waves_of_an_inverted_lead(record):
    from ecgedge.beatformat import BeatFormat
    from ecgedge.firmware_bridge.pipeline import StreamPipeline
    from ecgedge.firmware_bridge.protocol import Hello

    adc = record.to_adc()[: 60 * FS]
    inputs = {}
    for name, counts, polarity in (("up", adc, "positive"), ("down", 2 * record.baseline - adc, "auto")):
        pipeline = StreamPipeline(name, BeatFormat(140), polarity=polarity)
        pipeline.configure(Hello(FS, 11, record.adc_gain, record.baseline, ("MLII",)))
        inputs[name] = {b.sample: b.model_input for b in feed(pipeline, counts, {})}
        assert pipeline.finder.detector.polarity == (1 if name == "up" else -1)
    shared = sorted(set(inputs["up"]) & set(inputs["down"]))
    assert len(shared) > 50
    # an inverted lead, once its polarity is known, gives the model the same beats
    assert all(np.allclose(inputs["up"][s], inputs["down"][s], atol=1e-4) for s in shared)


def test_a_backlog_delivered_as_one_long_chunk_loses_no_beat(record):
    """A stalled reader hands the pipeline seconds of samples at once; every beat in them is still cut."""
    from ecgedge.beatformat import BeatFormat
    from ecgedge.firmware_bridge.pipeline import StreamPipeline
    from ecgedge.firmware_bridge.protocol import Hello

    adc = record.to_adc()[: 60 * FS]
    found = {}
    for per_frame in (10, 8 * FS):
        pipeline = StreamPipeline("p", BeatFormat(140))
        pipeline.configure(Hello(FS, 11, record.adc_gain, record.baseline, ("MLII",)))
        found[per_frame] = [b.sample for b in feed(pipeline, adc, {}, per_frame=per_frame)]
    assert len(found[10]) > 60
    assert found[8 * FS] == found[10]


def test_filter_bank_matches_sosfilt_whatever_the_chunk_lengths():
    """Short chunks take the block state-space path, long ones sosfilt; the output is one filter's."""
    from scipy import signal

    from ecgedge.analysis.filters import FilterBank, bandpass_sos

    rng = np.random.default_rng(0)
    sos = bandpass_sos(0.5, 40.0, FS)
    starts = (1.0, -2.0, 0.5)
    x = rng.normal(size=(3, 4000)).cumsum(axis=1) + np.array(starts)[:, None]
    expected = np.stack(
        [signal.sosfilt(sos, row, zi=signal.sosfilt_zi(sos) * x0)[0] for row, x0 in zip(x, starts, strict=True)]
    )
    bank = FilterBank(sos, max_block=64)
    slots = np.array([bank.add(x0) for x0 in starts])
    lengths = np.concatenate([[10] * 50, rng.integers(1, 150, size=60)])
    edges = np.minimum(np.concatenate([[0], np.cumsum(lengths)]), x.shape[1])
    got = np.hstack([bank.filter(slots, x[:, a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a])
    assert got.shape == x.shape and set(lengths) & set(range(65, 150)) and set(lengths) & set(range(1, 65))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9 * np.abs(expected).max())


def test_a_hub_that_never_ran_closes_its_ports_and_sinks(bundle, tmp_path):
    from ecgedge.firmware_bridge.sinks import SqliteSink

    endpoint = TcpEndpoint()
    with Hub(load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.fixed())) as hub:
        link = hub.add_board(endpoint.url)
        hub.sinks.append(SqliteSink(tmp_path / "beats.db", hub.fs_of))
    assert hub.sinks[0]._closed and link.source._stop.is_set()
    endpoint.close()


def _live_with_sinks(bundle, signal: np.ndarray, record, tmp_path, speed: float = 60) -> tuple[dict, list[dict]]:
    """A signal (mV) played live over a pty at ``speed`` into a hub learning for 60 s, with JSON lines and SQLite sinks.

    Returns the hub's summary and the JSON lines, parsed.
    """
    adc = np.round(signal * record.adc_gain + record.baseline).astype(np.int32)
    hub = Hub(load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.adapt(60)))
    endpoint = PtyEndpoint()
    hub.add_board(endpoint.path, name="bed1")
    hub.sinks += [JsonlSink(tmp_path / "beats.jsonl"), SqliteSink(tmp_path / "beats.db", hub.fs_of)]
    summary = play(hub, [(VirtualBoard(adc, FS, record.adc_gain, record.baseline), endpoint)], speed=speed)
    return summary, [json.loads(line) for line in (tmp_path / "beats.jsonl").read_text().splitlines()]


def test_a_noise_burst_and_the_rhythm_reach_every_sink_as_typed_events(bundle, record, tmp_path):
    """Record 100 with 15 s of muscle noise at -6 dB, live over a pty: the burst is one noisy /
    noise-over pair, its beats are noisy and unflagged, and the rhythm is read once as sinus."""
    from ecgedge.datasets import add_noise

    signal = record.signal[: 240 * FS].copy()
    burst = slice(150 * FS, 165 * FS)
    signal[burst] = add_noise(signal, FS, -6.0, ["muscle"], seed=5)[burst]
    summary, lines = _live_with_sinks(bundle, signal, record, tmp_path)
    rows = [r for r in lines if "event" not in r]
    events = [r for r in lines if "event" in r and r["event"] != "link-up"]
    noisy = [r for r in rows if r["quality"] == "noisy"]
    assert [e["event"] for e in events if e["event"] in ("noisy", "noise-over")] == ["noisy", "noise-over"]
    assert all(149 * FS <= r["sample"] <= 170 * FS for r in noisy) and len(noisy) >= 10
    assert not any(r["anomaly"] for r in noisy)
    assert [(e["rhythm"], e["sample"]) for e in events if e["event"] == "rhythm-change"][0][0] == "sinus"
    assert summary["events"]["noisy"] == summary["events"]["noise-over"] == 1
    with sqlite3.connect(tmp_path / "beats.db") as db:
        stored = db.execute("SELECT quality, rhythm, COUNT(*) FROM beats GROUP BY quality, rhythm").fetchall()
        kinds = [k for (k,) in db.execute("SELECT event FROM events ORDER BY id")]
    assert dict(((q, r), n) for q, r, n in stored)[("noisy", "sinus")] == len(
        [r for r in noisy if r["rhythm"] == "sinus"]
    )
    assert {"noisy", "noise-over", "rhythm-change"} <= set(kinds)


def test_a_new_qrs_complex_is_learnt_live_and_said_in_every_sink(population_bundle, record, tmp_path):
    """Record 100 with its electrodes swapped at 120 s (learnt over the first 60 s), live over a pty:
    one relearned event in JSON lines and SQLite, with its strip, and the swapped beats judged normal after it."""
    signal = record.signal[: 260 * FS].copy()
    signal[120 * FS :] *= -1
    summary, lines = _live_with_sinks(population_bundle, signal, record, tmp_path)
    relearned = [r for r in lines if r.get("event") == "relearned"]
    assert (
        len(relearned) == 1 and 119 * FS <= relearned[0]["sample"] <= 125 * FS and summary["events"]["relearned"] == 1
    )
    rows = [r for r in lines if "event" not in r]
    assert sum(r["anomaly"] for r in rows if r["sample"] > 200 * FS) <= 1  # two minutes on: the new complex is normal
    with sqlite3.connect(tmp_path / "beats.db") as db:
        assert db.execute("SELECT COUNT(*) FROM events WHERE event = 'relearned'").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM strips WHERE kind = 'relearned'").fetchone()[0] == 1


def test_asystole_is_a_high_priority_alarm_in_every_sink_within_5_s(bundle, record, tmp_path):
    """Record 100 with 7 s of asystole from 150 s (the electrodes on: the board reports no lead-off): the
    baseline with 5 uV rms of electrode and amplifier noise, a flat line that is not a still one."""
    signal = record.signal[: 200 * FS].copy()
    last = record.beat_samples[record.beat_samples < 150 * FS][-1]
    flat = slice(last + round(0.4 * FS), last + round(7.4 * FS))
    signal[flat] = signal[flat.start] + np.random.default_rng(0).normal(0.0, 0.005, flat.stop - flat.start)
    # the hub decides asystole once per batch of messages, and a hub that fell behind reads a long batch:
    # played slower, a stall of the machine covers less signal (the batch, not the test, depends on speed)
    summary, lines = _live_with_sinks(bundle, signal, record, tmp_path, speed=20)
    events = {e["event"]: e for e in lines if "event" in e}
    assert events["asystole"]["priority"] == "high" and events["asystole-over"]["priority"] == "high"
    assert 4.0 <= float(events["asystole"]["detail"].split()[-2]) < 5.0  # raised 4-5 s of signal after the last beat
    assert events["no-signal"]["priority"] == "technical"  # a flat line is also said, as technical
    assert summary["events"]["asystole"] == 1
    with sqlite3.connect(tmp_path / "beats.db") as db:
        stored = [k for (k,) in db.execute("SELECT event FROM events WHERE event LIKE 'asystole%' ORDER BY id")]
    assert stored == ["asystole", "asystole-over"]
