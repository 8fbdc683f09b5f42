"""``ecgedge simulate`` and ``ecgedge bridge`` as a user runs them: two processes, a real pty or socket."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner
from fixtures.bridge_support import stop_bridge_once_written, tiny_bundle

from ecgedge.cli import main

ECGEDGE = [sys.executable, "-c", "from ecgedge.cli import main; main()"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("fmt, transport", [("binary", "socket"), ("ascii", "pty")])
def test_simulate_then_bridge(bundle, tmp_path, fmt, transport):
    if transport == "pty":
        link = tmp_path / "board"
        where, sim_args = str(link), ["--pty", "--link", str(link)]
    else:
        where = f"socket://127.0.0.1:{free_port()}"
        sim_args = ["--port", where]
    sim = subprocess.Popen(
        [*ECGEDGE, "simulate", *sim_args, "--format", fmt, "--speed", "40", "--duration", "90", "--flow-control"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert sim.stdout.readline().strip() == f"port: {where}"  # the board is up
        # ASCII needs the board's format on the command line and adapts to the patient over 20 s; the binary run
        # learns a score threshold from 20 beats instead
        extra = (
            ["--fs", "360", "--baseline", "1024", "--gain", "200", "--adapt", "20"]
            if fmt == "ascii"
            else ["--calibrate", "20"]
        )
        name = "bed7" if transport == "socket" else where  # a ward names its beds: --port bed7=socket://...
        jsonl = tmp_path / "beats.jsonl"
        bridge = subprocess.Popen(
            [
                *ECGEDGE,
                "bridge",
                "--port",
                f"bed7={where}" if transport == "socket" else where,
                "--bundle",
                str(bundle),
                "--format",
                fmt,
                *extra,
                "--jsonl",
                str(jsonl),
                "--duration",
                "600",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            sim_out = sim.communicate(timeout=300)[0]  # the board played its 90 s, however long that took
            stdout, stderr = stop_bridge_once_written(bridge, jsonl, 100)  # 100 beats at least, then SIGINT
        finally:
            bridge.kill()
    finally:
        sim.kill()
    assert bridge.returncode == 0, stderr
    summary = json.loads(stdout.split("summary-json: ")[1])
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rows = [r for r in lines if "event" not in r]
    events = [r["event"] for r in lines if "event" in r]
    assert events[0] == "link-up" and "board-error" not in events, events
    assert {r["stream"] for r in rows} == {name}
    # 90 s of record 100 at about 75 beats a minute, less the first beats the detector learns on
    assert 100 <= summary["beats"] == len(rows) <= 115
    assert "latency p50=" in stdout and summary["frames_dropped"] == 0
    assert json.loads(sim_out.split("simulate: ")[1])["overruns"] == 0
    assert summary["learning_beats"] == sum(r["learning"] for r in rows)
    modes = [r["mode"] for r in rows]
    judged = "fixed" if fmt == "binary" else "adapted"
    assert modes == ["learning"] * summary["learning_beats"] + [judged] * (len(rows) - summary["learning_beats"])
    if fmt == "binary":
        assert summary["learning_beats"] == 20
    else:  # 20 s of beats at about 75 a minute
        assert 20 <= summary["learning_beats"] <= 30 and summary["adapted_streams"] == [where]
    assert "learnt " in stdout
    # record 100 is sinus rhythm: unknown until the rhythm analyser's window has read it, then sinus, once
    rhythms = [r["rhythm"] for r in rows]
    first_sinus = rhythms.index("sinus")
    assert set(rhythms[:first_sinus]) == {"unknown"} and set(rhythms[first_sinus:]) == {"sinus"} and first_sinus < 40
    changes = [r for r in lines if r.get("event") == "rhythm-change"]
    assert [(c["rhythm"], c["sample"]) for c in changes] == [("sinus", rows[first_sinus]["sample"])]
    assert {r["quality"] for r in rows} == {"ok"} and "noisy" not in events


def test_simulate_needs_exactly_one_transport():
    result = CliRunner().invoke(main, ["simulate", "--duration", "1"])
    assert result.exit_code != 0 and "exactly one of --pty and --port" in result.output


def test_bridge_ascii_needs_the_sample_rate(bundle):
    result = CliRunner().invoke(main, ["bridge", "--port", "loop://", "--bundle", str(bundle), "--format", "ascii"])
    assert result.exit_code != 0 and "--fs" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "ascii", "--fs", "250", "--gain", "0"], "--gain"),
        (["--format", "ascii", "--fs", "inf"], "--fs"),
        (["--format", "ascii", "--fs", "250", "--gain", "nan"], "--gain"),
        (["--db", "/proc/version"], "/proc/version"),
    ],
)
def test_bridge_names_a_bad_setting_before_it_streams(bundle, args, message):
    result = CliRunner().invoke(main, ["bridge", "--port", "loop://", "--bundle", str(bundle), *args])
    assert result.exit_code in (1, 2) and message in result.output, result.output
    assert "Traceback" not in result.output


def test_a_bed_has_its_own_alarm_limits_over_the_bridges(bundle):
    """``--bed-limit BED:LIMIT=VALUE`` reaches that board's judge; the other boards keep the bridge's limits."""
    from ecgedge.analysis.alarms import AlarmLimits
    from ecgedge.cli.bridge import _boards, _settings, bridge
    from ecgedge.firmware_bridge.hub import Hub
    from ecgedge.runtime import load_scorer

    args = ["--port", "adult=loop://", "--port", "child=socket://localhost:7", "--bundle", str(bundle)]
    args += ["--tachy-bpm", "150"]
    args += ["--bed-limit", "child:tachy-bpm=200", "--bed-limit", "child:brady-bpm=60", "--bed-limit", "child:pause=2"]
    with bridge.make_context("bridge", args) as context:
        settings = _settings(context.params)
        boards = _boards(context.params["ports"], context.params, settings.alarm_limits)
    hub = Hub(load_scorer(bundle), settings)
    for board in boards:
        hub.add_board(board)
    assert hub.core.judges["child"].alarms.limits == AlarmLimits(tachy_bpm=200, brady_bpm=60, pause_s=2.0)
    assert hub.core.judges["adult"].alarms.limits == AlarmLimits(tachy_bpm=150)


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("ward:tachy-bpm=200", "no board named 'ward'; the boards: adult"),
        ("adult:tachy=200", "'tachy' is not one of asystole, vt-beats"),
        ("adult:vt-beats=4.5", "'4.5' is not a whole number"),
        ("adult:brady-bpm=fast", "'fast' is not a number"),
        ("adult:brady-bpm=150", "brady below tachy"),
        ("adult:pause=nan", "finite positive"),
    ],
)
def test_a_bed_limit_that_cannot_be_used_is_named(bundle, limit, message):
    args = ["bridge", "--port", "adult=loop://", "--bundle", str(bundle), "--bed-limit", limit]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output and "--bed-limit" in result.output, result.output
    assert "Traceback" not in result.output


def test_simulate_refuses_a_speed_that_is_not_finite():
    result = CliRunner().invoke(main, ["simulate", "--pty", "--speed", "nan"])
    assert result.exit_code == 2 and "--speed" in result.output and "finite" in result.output


def test_every_alarm_limit_has_an_option():
    """Each field of AlarmLimits reaches the bridge's settings from its own option; a count under 1 is named."""
    from dataclasses import fields

    from ecgedge.analysis.alarms import AlarmLimits
    from ecgedge.cli.bridge import _settings, bridge

    given = {"vt_beats": 6, "vt_bpm": 120.0, "brady_bpm": 35.0, "brady_beats": 8, "tachy_bpm": 150.0}
    given |= {"tachy_beats": 12, "pause_s": 2.5, "asystole_s": 5.0}
    assert set(given) == {f.name for f in fields(AlarmLimits)}
    options = {"vt_beats": "--vt-beats", "vt_bpm": "--vt-bpm", "pause_s": "--pause", "asystole_s": "--asystole"}
    args = [a for name, value in given.items() for a in (options.get(name, f"--{name.replace('_', '-')}"), str(value))]
    with bridge.make_context("bridge", ["--port", "loop://", "--bundle", ".", *args]) as context:
        assert _settings(context.params).alarm_limits == AlarmLimits(**given)
    result = CliRunner().invoke(main, ["bridge", "--port", "loop://", "--bundle", ".", "--tachy-beats", "0"])
    assert result.exit_code == 2 and "--tachy-beats" in result.output
