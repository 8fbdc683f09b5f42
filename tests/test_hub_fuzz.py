"""End-to-end hub fuzzer: hostile but CRC-valid boards over real ptys, a real scorer, a good board beside them.

Seeded and time-bounded; ``benchmarks/stream.py --fuzz SECONDS`` runs it longer.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fixtures.bridge_support import play, tiny_bundle

from ecgedge.datasets import load_wfdb_record
from ecgedge.firmware_bridge.hub import Hub
from ecgedge.firmware_bridge.settings import BridgeSettings, Judging
from ecgedge.firmware_bridge.simulator import HostileBoard, PtyEndpoint, VirtualBoard
from ecgedge.runtime import load_scorer

FS = 360


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory)


def test_hostile_boards_never_escape_an_exception_nor_stop_the_good_board(bundle):
    record = load_wfdb_record(lead="MLII")
    hub = Hub(load_scorer(bundle, threads=1), BridgeSettings(judging=Judging.fixed(), max_lag_s=60))
    events, good_samples = [], []
    hub.on_event = events.append
    hub.on_beats = lambda scored: good_samples.extend(s.beat.sample for s in scored if s.beat.stream == "good")
    good = VirtualBoard.from_record(duration_s=40)
    boards = [(good, PtyEndpoint())]
    hub.add_board(boards[0][1].path, name="good")
    hostile = {}
    for seed, fmt in ((0, "binary"), (1, "binary"), (2, "binary"), (3, "ascii")):
        board = HostileBoard(record.to_adc(), FS, record.adc_gain, record.baseline, seed=seed, fmt=fmt)
        endpoint = PtyEndpoint()
        extra = {"fs": FS, "baseline": record.baseline, "gain": record.adc_gain} if fmt == "ascii" else {}
        hub.add_board(endpoint.path, name=f"hostile{seed}", fmt=fmt, **extra)
        hostile[f"hostile{seed}"] = board
        boards.append((board, endpoint))
    reference = VirtualBoard.from_record(duration_s=40)
    for _ in reference.chunks():  # the same stream as the good board's: as many frames as it sends in all
        pass
    frames = reference.stats.frames
    stop = threading.Event()

    def stop_when_the_good_board_is_done() -> None:  # then the hostile ones stop too, however long it took
        deadline = time.monotonic() + 300
        while good.stats.frames < frames and time.monotonic() < deadline and not stop.wait(0.05):
            pass
        stop.set()

    watcher = threading.Thread(target=stop_when_the_good_board_is_done)
    watcher.start()
    try:
        summary = play(hub, boards, speed=8, stop=stop)  # re-raises anything that escaped Hub.run
    finally:
        stop.set()
        watcher.join()
    assert good.stats.frames == frames and good.stats.overruns == 0  # all 40 s of it sent, none lost

    assert summary["internal_errors"] == 0, [str(e) for e in events if "internal error" in e.detail]
    # all 40 s of record 100: about 50 beats less the detector's first seconds, never a pause
    assert len(good_samples) > 35 and np.diff(sorted(good_samples)).max() < 2 * FS, good_samples
    links = summary["links"]
    assert links["good"]["frames"] > 0 and links["good"]["lost"] == 0 and links["good"]["rejected_samples"] == 0
    assert not [e for e in events if e.stream == "good" and e.name in ("board-error", "no-signal", "no-beats")]
    for name, board in hostile.items():
        assert links[name]["frames"] > 100, (name, links[name])
        assert sum(board.kinds.values()) > 200 and board.kinds["sane"] > 0, board.kinds
    for name in ("hostile0", "hostile1", "hostile2"):
        names = [e.name for e in events if e.stream == name]
        assert "board-error" in names, (name, names)
    assert links["hostile3"]["corrupt"].get("ascii-range", 0) > 0
