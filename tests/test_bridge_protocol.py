"""Frame and line decoding, fault accounting, and the reconnecting serial source."""

from __future__ import annotations

import time
from itertools import islice

import numpy as np
import pytest
from fixtures.bridge_support import Collector, decode_stream

from ecgedge.datasets import load_wfdb_record
from ecgedge.firmware_bridge.decoder import AsciiDecoder, FrameDecoder, LinkStats
from ecgedge.firmware_bridge.protocol import LEAD_OFF_MINUS, LEAD_OFF_PLUS, Samples, Status, encode_frame
from ecgedge.firmware_bridge.simulator import PtyEndpoint, TcpEndpoint, VirtualBoard
from ecgedge.firmware_bridge.source import SerialSource, backoff

#: Seconds a wait may take before the test calls it a hang (a loaded machine is slow, never this slow).
HANG_S = 60.0


@pytest.fixture(scope="module")
def record():
    return load_wfdb_record(lead="MLII")


@pytest.mark.parametrize("seed", [0, 1])
def test_every_damaged_or_dropped_frame_is_counted_and_nothing_wrong_is_delivered(record, seed):
    board = VirtualBoard(
        record.to_adc()[: 120 * 360],
        record.fs,
        record.adc_gain,
        record.baseline,
        corrupt_rate=1e-3,
        drop_rate=1e-2,
        seed=seed,
    )
    # a clean frame on each side (seq 65535 before the board's 0, and the board's next seq after it),
    # so that damage at either end shows up as a sequence gap too
    data = encode_frame(Status(0, 0), 0xFFFF) + b"".join(chunk for _, chunk in board.chunks())
    data += encode_frame(Status(0, 0), board.stats.frames)
    collector, stats = decode_stream(data, chunk=int(np.random.default_rng(seed).integers(1, 200)))
    assert board.stats.damaged > 20 and board.stats.dropped > 20  # the faults really happened
    assert stats.dropped == board.stats.damaged + board.stats.splits
    assert stats.lost == board.stats.damaged + board.stats.dropped
    assert stats.frames == board.stats.frames + 2 - stats.lost
    adc = record.to_adc()
    received = collector.sample_map()
    assert all(adc[i] == v for i, v in received.items())  # CRC let no damaged sample through
    n_blocks = sum(isinstance(e, Samples) for e in collector.events)
    assert len(received) == 10 * n_blocks  # no index delivered twice
    assert len(received) >= 120 * 360 - 10 * (board.stats.damaged + board.stats.dropped)


def test_resync_after_garbage_a_merged_delimiter_and_an_overlong_run():
    frames = [encode_frame(Status(i, 0), i) for i in range(7)]
    merged = bytearray(frames[2])
    merged[-1] = 0x55  # the delimiter after frame 2 is hit: frames 2 and 3 become one bad packet
    data = (
        bytes(range(1, 30))
        + frames[0]
        + frames[1]
        + bytes(merged)
        + frames[3]
        + frames[4]
        + b"\x07" * 700
        + b"\x00"
        + frames[5]
        + frames[6]
    )
    collector, stats = decode_stream(data, chunk=5)
    assert [e.index for e in collector.events] == [1, 4, 5, 6]  # frame 0 went with the garbage before it
    assert stats.corrupt["overlong"] == 1 and stats.dropped == 3
    assert stats.lost == 2  # seq 2, 3 (frame 0 was never seen, so it is no gap)


def test_ascii_lines_over_a_real_pty():
    endpoint = PtyEndpoint()
    stats = LinkStats()
    collector = Collector()
    source = SerialSource(endpoint.path, lambda: AsciiDecoder(collector, stats)).start()
    try:
        assert source.wait_connected(HANG_S) and endpoint.wait_reader(HANG_S)
        endpoint.write(b"24\r\n1000\r\n1010\r\n!\r\n!\n990\r\nabc\r\n985\r\n980,3\r\n970\r\n")
        assert collector.wait_for(lambda events: len(events) >= 5)
    finally:
        source.stop()
        endpoint.close()
    # "24" is the tail of a cut line and is skipped; "abc" and "980,3" are bad and leave gaps
    assert collector.sample_map() == {0: 1000, 1: 1010, 4: 990, 6: 985, 8: 970}
    statuses = [(e.index, e.flags) for e in collector.events if isinstance(e, Status)]
    assert statuses == [(2, LEAD_OFF_PLUS | LEAD_OFF_MINUS), (4, 0)]
    assert stats.corrupt["ascii"] == 2 and stats.frames == 5


def send_until_received(endpoint, frame: bytes, collector: Collector, count: int, timeout: float = HANG_S) -> bool:
    """Write like a board does (over and over) until the listener has ``count`` events.

    A port that is being opened discards what arrived before (pyserial resets
    the input buffer on open), so a single write may be lost by design.
    """
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        endpoint.write(frame)
        if collector.wait_for(lambda events: len(events) >= count, 0.05):
            return True
    return False


def test_a_lost_port_is_tried_again_at_most_max_backoff_apart():
    # doubling from min_backoff, never beyond max_backoff: a replugged board is read again within
    # max_backoff (and the time to open it), however long it was gone
    assert list(islice(backoff(0.05, 0.5), 8)) == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5, 0.5]
    assert list(islice(backoff(0.3, 0.3), 3)) == [0.3, 0.3, 0.3]


def test_source_reconnects_to_a_socket_board_once_it_is_plugged_back(monkeypatch):
    from ecgedge.firmware_bridge import source as source_module

    schedules = []

    def recorded(first: float, most: float):
        schedules.append((first, most))
        return backoff(first, most)

    monkeypatch.setattr(source_module, "backoff", recorded)
    endpoint = TcpEndpoint()
    stats, collector = LinkStats(), Collector()
    source = SerialSource(endpoint.url, lambda: FrameDecoder(collector, stats)).start()
    try:
        assert endpoint.wait_reader(HANG_S)
        assert send_until_received(endpoint, encode_frame(Status(1, 0), 0), collector, 1)
        endpoint.disconnect()  # unplug: the link drops and connections are refused for a while
        time.sleep(0.5)
        before = len(collector.events)
        endpoint.reconnect()
        assert send_until_received(endpoint, encode_frame(Status(2, 0), 50), collector, before + 1)
    finally:
        source.stop()
        endpoint.close()
    assert stats.connections >= 2 and stats.lost == 0  # seq restarts with each connection
    assert len(source.reconnects) >= 1  # the loss and the port open again, timed
    # its retries wait as backoff() says (see above), from min_backoff again after each connection
    assert len(schedules) >= 2 and set(schedules) == {(source.min_backoff, source.max_backoff)}


def test_bad_port_url_is_named():
    with pytest.raises(ValueError, match="nosuchscheme://board"):
        SerialSource("nosuchscheme://board", lambda: FrameDecoder(Collector(), LinkStats()))


def test_ports_and_sinks_close_as_context_managers(tmp_path):
    from ecgedge.firmware_bridge.sinks import JsonlSink, SqliteSink

    endpoint = TcpEndpoint()
    with SerialSource(endpoint.url, lambda: FrameDecoder(Collector(), LinkStats())).start() as source:
        assert source.wait_connected(HANG_S)
    assert not source._thread.is_alive()  # the port is closed and nothing reconnects
    endpoint.close()
    with JsonlSink(tmp_path / "beats.jsonl") as jsonl, SqliteSink(tmp_path / "beats.db", lambda stream: 360.0) as db:
        pass
    assert jsonl._file.closed and db._closed
    db.close()  # closing twice is harmless
