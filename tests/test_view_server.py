"""The bedside page's server and feed: what it shows, who may see it, and that no viewer slows the hub.

A real aiohttp server on a loopback port, real sockets; the feed is fed real filtered ECG.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("aiohttp")

from ecgedge.analysis.beats import Beat  # noqa: E402
from ecgedge.analysis.judge import Verdict  # noqa: E402
from ecgedge.analysis.scored import ScoredBeat  # noqa: E402
from ecgedge.datasets import load_wfdb_record  # noqa: E402
from ecgedge.firmware_bridge.events import Cleared, Condition, Raised  # noqa: E402
from ecgedge.view.feed import DISPLAY_HZ, STRIP_S, TECHNICAL_HOLD_S, BoardState, LiveFeed, Viewer  # noqa: E402
from ecgedge.view.server import RequestLog, ViewServer  # noqa: E402

TOKEN = "a-token-for-tests-0123"


@pytest.fixture
def served():
    feed = LiveFeed()
    server = ViewServer(feed, "127.0.0.1", 0, TOKEN, max_viewers=3)
    yield feed, server
    server.close()


def get(server, path, token=TOKEN, **headers):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    return response, conn


def test_the_page_and_its_assets_come_with_a_strict_content_security_policy(served):
    _, server = served
    for path, kind in (("/", "text/html"), ("/static/app.js", "text/javascript"), ("/static/style.css", "text/css")):
        response, conn = get(server, path, token=None)
        body = response.read()
        assert response.status == 200 and response.getheader("Content-Type").startswith(kind) and body
        csp = response.getheader("Content-Security-Policy")
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert (
            response.getheader("X-Content-Type-Options") == "nosniff"
            and response.getheader("Cache-Control") == "no-store"
        )
        conn.close()
    html = get(server, "/", token=None)[0].read().decode()
    assert "http://" not in html and "https://" not in html  # every asset is the package's own: no CDN


@pytest.mark.parametrize(
    "path",
    [
        "/static/feed.py",
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/etc/passwd",
        "/static/",
        "/api/../../pyproject.toml",
    ],
)
def test_nothing_of_the_file_system_is_served_beyond_the_assets(served, path):
    response, conn = get(served[1], path)
    assert response.status == 404
    conn.close()


@pytest.mark.parametrize("token", [None, "", "wrong-token-0123456789", TOKEN + "x", TOKEN[:-1]])
def test_the_data_needs_the_token(served, token):
    for path in ("/api/state", "/api/events"):
        response, conn = get(served[1], path, token=token)
        assert response.status == 401 and b"token" in response.read()
        conn.close()
    response, conn = get(served[1], "/api/state")
    assert response.status == 200 and json.loads(response.read())["type"] == "snapshot"
    conn.close()


def test_the_server_is_read_only_and_refuses_huge_headers(served):
    _, server = served
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.request("POST", "/api/state", body=b"x" * 100, headers={"Authorization": f"Bearer {TOKEN}"})
    assert conn.getresponse().status == 405
    conn.close()
    response, conn = get(server, "/api/state", **{"X-Padding": "x" * 20_000})
    assert response.status == 400
    conn.close()


#: What clients send that aiohttp refuses with a 400 before any handler runs.
BAD_REQUESTS = {
    "a 20 KB header": b"GET /api/state HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"x" * 20_000 + b"\r\n\r\n",
    "a 10 KB request line": b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "a malformed request line": b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    "bytes that are not HTTP": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n",
    "a bad Content-Length": b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
}


def send_raw(server, data: bytes) -> bytes:
    """Send ``data`` on a new socket; return the status line of the answer."""
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(data)
        return sock.makefile("rb").readline()


def test_refused_requests_make_one_line_each_and_never_a_traceback(served, caplog):
    _, server = served
    now = [1000.0]
    server.log.clock = lambda: now[0]  # the rate limit's clock, moved by hand
    caplog.set_level(logging.DEBUG)
    for data in BAD_REQUESTS.values():
        assert b" 400 " in send_raw(server, data)
        now[0] += server.log.every_s + 1  # each one after the limit: each makes its line
    records = [r for r in caplog.records if r.name.startswith(("ecgedge.view", "aiohttp"))]
    assert len(records) == len(BAD_REQUESTS) == server.log.refused
    assert all(r.levelno == logging.WARNING and r.exc_info is None and "\n" not in r.getMessage() for r in records)
    assert all(r.getMessage().startswith("page: ") and "refused, 400 " in r.getMessage() for r in records)
    assert all(len(r.getMessage()) < 300 for r in records)  # 20 KB of header is not copied into the log


def test_a_flood_of_refused_requests_is_summed_up_in_one_line(served, caplog):
    _, server = served
    now = [1000.0]
    server.log.clock = lambda: now[0]
    caplog.set_level(logging.DEBUG)
    for _ in range(3):  # within one period: one line, the other two counted
        for data in BAD_REQUESTS.values():
            assert b" 400 " in send_raw(server, data)
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.name == "ecgedge.view.server"] == ["page"]
    assert server.log.held == 3 * len(BAD_REQUESTS) - 1
    now[0] += server.log.every_s
    assert b" 400 " in send_raw(server, BAD_REQUESTS["a 20 KB header"])
    lines = [r.getMessage() for r in caplog.records if r.name == "ecgedge.view.server"]
    assert len(lines) == 2 and f"({3 * len(BAD_REQUESTS) - 1} more since the last line, not logged)" in lines[1]
    assert server.log.refused == 3 * len(BAD_REQUESTS) + 1 and server.log.held == 0


def test_an_error_of_the_page_s_own_code_keeps_its_traceback_under_the_same_limit(caplog):
    now = [0.0]
    log = RequestLog(logging.getLogger("ecgedge.view.server"), every_s=10.0, clock=lambda: now[0])
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        try:
            raise RuntimeError("a bug in a handler")
        except RuntimeError as exc:
            log.exception("Error handling request from %s", "127.0.0.1", exc_info=exc)
    log.debug("Ignored premature client disconnection")  # aiohttp's debug messages pass as they are
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info[0] is RuntimeError and log.held == 2 and log.refused == 0
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG] == [
        "Ignored premature client disconnection"
    ]


def test_the_bridge_s_stderr_gets_one_line_and_no_traceback_for_refused_requests():
    """In a process of its own with no logging set up, as the bridge runs: what reaches stderr."""
    script = f"""
import socket
from ecgedge.view.feed import LiveFeed
from ecgedge.view.server import ViewServer

BAD = {list(BAD_REQUESTS.values())!r}
server = ViewServer(LiveFeed(), "127.0.0.1", 0, {TOKEN!r}, log_every_s=3600)
for data in BAD * 20:
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(data)
        assert b" 400 " in sock.makefile("rb").readline()
server.close()
print(server.log.refused)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) == 20 * len(BAD_REQUESTS)
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()  # the first refusal, then what the close sums up
    assert len(lines) == 2 and lines[0].startswith("page: ") and "refused, 400 " in lines[0], run.stderr
    assert (
        lines[1]
        == f"page: {20 * len(BAD_REQUESTS) - 1} more refused or failed requests since the last line, not logged"
    )


def _events(server, token=TOKEN) -> socket.socket:
    """An event stream opened on a raw socket that reads nothing (a paused or dead browser)."""
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    return sock


def _chunk(record, i: int, n: int = 36) -> tuple[int, np.ndarray]:
    return i * n, record.signal[i * n : (i + 1) * n]


@pytest.mark.timeout(120)
def test_a_viewer_that_never_reads_loses_display_frames_and_never_blocks_the_hub(served):
    feed, server = served
    record = load_wfdb_record(lead="MLII")
    stalled = _events(server)  # never reads
    deadline = time.monotonic() + 60  # a hang bound, not a speed
    while not feed.viewers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(feed.viewers) == 1
    # 2,000 s of a board's signal, far more than any socket buffer holds: were the hub's call to wait
    # for the viewer, this loop would never end (benchmarks/view.py measures the hub's latency)
    for i in range(20_000):
        feed.on_signal("bed1", 360.0, *_chunk(record, i % 18_000))
    assert feed.dropped > 500 and all(len(v.frames) <= v.frames.maxlen for v in feed.viewers)
    stalled.close()


def test_at_most_max_viewers_streams_and_thousands_of_idle_sockets_do_not_stop_the_page(served):
    feed, server = served
    streams = [_events(server) for _ in range(3)]
    deadline = time.monotonic() + 60  # a hang bound, not a speed
    while len(feed.viewers) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    response, conn = get(server, "/api/events")
    assert response.status == 503 and b"at most 3 viewers" in response.read()
    conn.close()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * 2000 + 200  # each idle connection is two descriptors here: the test's and the server's
    if soft < wanted and (hard == resource.RLIM_INFINITY or hard >= wanted):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    n = min(2000, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200) // 2)
    idle = [socket.create_connection((server.host, server.port), timeout=10) for _ in range(n)]  # open, send nothing
    response, conn = get(server, "/", token=None)
    assert response.status == 200 and n >= 300
    conn.close()
    for sock in idle + streams:
        sock.close()


def test_a_stream_starts_from_a_snapshot_and_then_follows_the_hub(served):
    feed, server = served
    record = load_wfdb_record(lead="MLII")
    feed.add_board("bed1")
    for i in range(400):  # 40 s at 360 Hz in 0.1 s chunks
        feed.on_signal("bed1", 360.0, *_chunk(record, i))
    response, conn = get(server, "/api/events")
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
    first = json.loads(response.readline().decode().removeprefix("data: "))
    response.readline()
    assert first["type"] == "snapshot" and first["boards"][0]["board"] == "bed1"
    strip = first["boards"][0]["strip"]
    assert len(strip) == round(STRIP_S * DISPLAY_HZ) and first["boards"][0]["strip_end"] == pytest.approx(40.0)
    assert max(strip) > 0.5  # the R waves of record 100, in mV, survive the decimation
    feed.on_signal("bed1", 360.0, *_chunk(record, 400))
    frame = json.loads(response.readline().decode().removeprefix("data: "))
    assert frame["type"] == "signal" and len(frame["values"]) == 9 and frame["end"] == pytest.approx(40.1)
    conn.close()


def test_the_feed_keeps_the_alarm_list_and_each_board_s_active_alarms():
    from ecgedge.firmware_bridge.events import RhythmChange

    feed = LiveFeed()
    viewer = Viewer()
    feed.subscribe(viewer)
    feed.on_event(Raised("bed1", 10.0, Condition.LEAD_OFF, "the board reports electrodes off"))
    feed.on_event(RhythmChange("bed2", 11.0, "af", 4000))
    assert feed.boards["bed1"].alarms == {"lead-off": "the board reports electrodes off"}
    feed.on_event(Cleared("bed1", 12.0, Condition.LEAD_OFF, 2.0))
    assert feed.boards["bed1"].alarms == {} and feed.boards["bed2"].rhythm == "af"
    assert [a["event"] for a in feed.alarms] == ["rhythm-change", "technical"]  # newest first; lead-off's one line
    technical = feed.alarms[1]
    assert technical["counts"] == {"lead-off": 1} and (technical["time"], technical["end"]) == (10.0, 12.0)
    assert technical["alarm"] is False and technical["active"] == {}
    frames = [f for f in viewer.take() if f["type"] == "alarm"]
    assert len(frames) == 3 and frames[0]["id"] == frames[2]["id"] and frames[0]["end"] is None  # updated in place


def test_technical_flickers_share_one_line_and_an_arrhythmia_alarm_is_one_line_from_start_to_end():
    feed = LiveFeed()
    for k in range(5):  # noise comes and goes every few seconds: one line, counted
        feed.on_event(Raised("bed1", 100.0 + 4 * k, Condition.NOISY, "noisy signal"))
        feed.on_event(Cleared("bed1", 102.0 + 4 * k, Condition.NOISY, 2.0))
    feed.on_event(Raised("bed1", 110.0, Condition.VT, "6 ventricular beats at 150 bpm"))
    feed.on_event(Cleared("bed1", 118.0, Condition.VT, 8.0))
    feed.on_event(Raised("bed1", 200.0, Condition.NOISY, "noisy signal"))  # 82 s after the last: a new line
    events = [(a["event"], a["time"], a["end"]) for a in feed.alarms]
    assert events == [("technical", 200.0, None), ("vt", 110.0, 118.0), ("technical", 100.0, 118.0)]
    assert feed.alarms[2]["counts"] == {"noisy": 5} and feed.alarms[0]["active"] == {"noisy": 200.0}
    assert feed.alarms[1]["priority"] == "high" and feed.alarms[1]["detail"] == "6 ventricular beats at 150 bpm"
    assert feed.snapshot()["technical_hold_s"] == TECHNICAL_HOLD_S


@pytest.mark.parametrize("condition", list(Condition), ids=lambda c: c.raised_name)
def test_every_condition_raised_is_an_alarm_on_the_page_and_its_end_clears_it(condition):
    feed = LiveFeed()
    feed.boards["bed1"] = BoardState("bed1", rhythm="sinus", heart_rate=72.0)
    feed.on_event(Raised("bed1", 10.0, condition, "seen"))
    state = feed.boards["bed1"]
    line = feed.alarms[0]
    assert state.alarms == {condition.raised_name: "seen"} and line["alarm"] is True and line["end"] is None
    assert line["event"] == ("technical" if condition.priority == "technical" else condition.raised_name)
    lost = condition in (Condition.LINK_DOWN, Condition.BOARD_ERROR, Condition.NO_DATA, Condition.LEAD_OFF)
    lost |= condition in (Condition.NO_SIGNAL, Condition.NO_BEATS, Condition.WORKER_DOWN)
    assert (state.heart_rate, state.rhythm) == ((None, "unknown") if lost else (72.0, "sinus"))
    feed.on_event(Cleared("bed1", 12.0, condition, 2.0))
    assert state.alarms == {} and list(feed.alarms) == [line] and line["alarm"] is False and line["end"] == 12.0


def test_a_tile_shows_the_judge_s_learning_time_and_heart_rate_as_they_are():
    feed = LiveFeed()
    beat = Beat("bed1", 360, 1.0, 0, np.zeros(10, np.float32), np.zeros(10, np.float32), 400)
    feed.on_beats(
        [ScoredBeat(beat, 0.0, Verdict("learning", None, None, False, heart_rate=72.0, learning_left_s=41.6))]
    )
    assert feed.boards["bed1"].public()["learning_left_s"] == 42 and feed.boards["bed1"].heart_rate == 72.0
    feed.on_beats([ScoredBeat(beat, 0.0, Verdict("adapted", None, 0.2, False, heart_rate=None))])
    assert feed.boards["bed1"].learning_left_s is None and feed.boards["bed1"].heart_rate is None
