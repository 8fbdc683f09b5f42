"""Multi-lead confirmation of asystole: a board's other leads are watched for R peaks (``ecgedge.analysis.leads``).

MIT-BIH 116 at 22:34 (1354.6 s) and 208 at 23:03 (1383.8 s): MLII jumps by about 3.5 mV and decays
back (an AC-coupled amplifier recovering from a step) without a QRS for 4.5-7 s, while V1 goes on
beating. One lead calls that asystole; the two leads a board sends do not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgedge.analysis.leads import LeadWatch, lead_peaks
from ecgedge.analysis.signal_alarms import asystole_alarms
from ecgedge.analysis.signal_quality import adc_rails
from ecgedge.datasets import load_wfdb_record

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
FS = 360
STEPS = {"116": 1354.6, "208": 1383.8}  # the MLII steps, seconds into each record
needs_mitdb = pytest.mark.skipif(
    not (MITDB / "116.hea").exists() or not (MITDB / "208.hea").exists(),
    reason=f"the shared MIT-BIH records 116 and 208 are not at {MITDB}",
)


def excerpt(name: str, lead: int, around: float, before: float = 40.0, after: float = 30.0):
    """A lead of a shared record from ``before`` s before ``around`` to ``after`` s after, with its reference beats."""
    record = load_wfdb_record(MITDB / name, lead=lead)
    lo, hi = round((around - before) * FS), round((around + after) * FS)
    beats = record.beat_samples[(record.beat_samples >= lo) & (record.beat_samples < hi)] - lo
    return record, record.signal[lo:hi], beats


def asystoles(record, signal: np.ndarray, peaks: np.ndarray) -> list:
    counts = np.round(signal * record.adc_gain + record.baseline).astype(np.int64)
    rails = adc_rails(record.adc_bits, record.baseline)
    return asystole_alarms(counts, FS, record.adc_gain, rails, np.unique(peaks), 4.0)


def test_a_watch_finds_the_r_peaks_of_a_lead_whatever_its_blocks_and_restarts_after_a_gap():
    record = load_wfdb_record(None, lead="V5")  # the bundled record 100's second lead
    signal, reference = record.signal[: 120 * FS], record.beat_samples[record.beat_samples < 120 * FS]
    rng = np.random.default_rng(0)
    cuts = np.cumsum(rng.integers(1, 200, size=2000))
    cuts = np.concatenate(([0], cuts[cuts < signal.size], [signal.size]))
    watch, found = LeadWatch(FS), []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        if 60 * FS <= a < 62 * FS:
            continue  # 2 s lost: a gap
        found += watch.add(int(a), signal[a:b])
        found += watch.add(int(a), signal[a:b])  # a repeated block: nothing new
    found = np.array(found)
    assert np.all(np.diff(found) > 0)
    restarted = [r for first in range(0, 20 * FS, 90) for r in watch.add(first, signal[first : first + 90])]
    assert len(restarted) > 15  # a board that starts counting from 0 again is followed, not ignored
    near = np.abs(found[:, None] - reference[None, :]).min(axis=0) <= 0.15 * FS
    outside = (reference < 59 * FS) | (reference > 65 * FS)  # the gap, and the detector's restart after it
    assert near[outside & (reference > 3 * FS)].mean() > 0.99 and len(found) <= len(reference)
    offline = lead_peaks(signal[: 59 * FS], FS, 36)  # the same detector, blocks of 0.1 s: the same peaks
    assert len(offline) > 60 and np.array_equal(found[: len(offline)], offline)
    assert np.array_equal(lead_peaks(signal[: 59 * FS], FS, 10 * FS), offline)  # as a scan in 10 s blocks reads them


@needs_mitdb
@pytest.mark.parametrize("name", sorted(STEPS))
def test_a_step_on_one_lead_is_no_asystole_when_the_other_lead_beats(name):
    record, mlii, _ = excerpt(name, 0, STEPS[name])
    _, v1, _ = excerpt(name, 1, STEPS[name])
    mlii_peaks = lead_peaks(mlii, FS, 36)
    (alone,) = asystoles(record, mlii, mlii_peaks)  # MLII alone: the false asystole of the alarm benchmark
    assert 40 * FS < alone[2] < 46 * FS
    assert asystoles(record, mlii, np.concatenate((mlii_peaks, lead_peaks(v1, FS, 36)))) == []


@needs_mitdb
def test_a_heart_that_stops_in_both_leads_is_still_asystole():
    """116 with 7 s of baseline in both leads from its 40th second (the electrodes on: 5 uV of noise)."""
    record, mlii, beats = excerpt("116", 0, 1300.0)
    _, v1, _ = excerpt("116", 1, 1300.0)
    last = beats[beats < 40 * FS][-1]
    flat = slice(last + round(0.4 * FS), last + round(7.4 * FS))
    rng = np.random.default_rng(1)
    for lead in (mlii, v1):
        lead[flat] = lead[flat.start] + rng.normal(0.0, 0.005, flat.stop - flat.start)
    peaks = np.concatenate((lead_peaks(mlii, FS, 36), lead_peaks(v1, FS, 36)))
    (alarm,) = asystoles(record, mlii, peaks)
    assert last <= alarm[0] and (alarm[2] - last) / FS < 5.0  # within 5 s of the last beat, as with one lead


@needs_mitdb
@pytest.mark.parametrize("confirm", [True, False])
def test_the_bridge_pipeline_counts_an_asystole_from_the_newest_peak_of_any_lead(confirm):
    """Record 116 as a two-lead board (``VirtualBoard.from_record(other_leads=True)``) through one
    pipeline: with confirmation the count never reaches 4 s (under 2 s once the detectors have their
    levels); from MLII alone it does, at the step."""
    from ecgedge.analysis.streams import FilterStage
    from ecgedge.beatformat import BeatFormat
    from ecgedge.firmware_bridge.pipeline import StreamPipeline
    from ecgedge.firmware_bridge.simulator import VirtualBoard

    board = VirtualBoard.from_record(MITDB / "116", other_leads=True, start_s=STEPS["116"] - 40, duration_s=70)
    assert board.hello.leads == ("MLII", "V1")
    pipeline, stage = StreamPipeline("bed1", BeatFormat(140), confirm_leads=confirm), FilterStage()
    pipeline.configure(board.hello)
    counts = np.column_stack((board.adc, board.others))
    longest = []
    for first in range(0, len(counts), 10):
        pipeline.push(first, counts[first : first + 10], 0.0)
        stage.run([pipeline])
        longest.append(pipeline.seconds_seen_without_peak)
    longest = np.array(longest)
    if confirm:  # never the 4 s of an asystole; past the detectors' first levels, under 2 s
        assert longest.max() < 4.0 and longest[5 * FS // 10 :].max() < 2.0
    else:
        assert longest.max() > 4.0 and 40 < np.argmax(longest > 4.0) * 10 / FS < 46


@needs_mitdb
@pytest.mark.parametrize("confirm", [True, False])
def test_a_pause_that_another_lead_beats_through_is_withheld_by_the_hub(confirm, population_bundle):
    """Record 116's MLII step, live over a pty as a two-lead board: the 4-7 s without a QRS in MLII is a pause of
    the beat lead only; V1 beats through it, so the hub withholds the pause (from MLII alone it raises one)."""
    from fixtures.bridge_support import play

    from ecgedge.firmware_bridge.hub import Hub
    from ecgedge.firmware_bridge.settings import BridgeSettings, Judging
    from ecgedge.firmware_bridge.simulator import PtyEndpoint, VirtualBoard
    from ecgedge.runtime import load_scorer

    board = VirtualBoard.from_record(MITDB / "116", other_leads=True, start_s=STEPS["116"] - 40, duration_s=70)
    settings = BridgeSettings(judging=Judging.fixed(), confirm_leads=confirm)  # alarms from the first beat
    hub = Hub(load_scorer(population_bundle, threads=1), settings)
    endpoint = PtyEndpoint()
    hub.add_board(endpoint.path, name="bed1")
    summary = play(hub, [(board, endpoint)], speed=20)
    assert summary["events"].get("pause", 0) == (0 if confirm else 1)
    assert summary["events"].get("asystole", 0) == (0 if confirm else 1)
