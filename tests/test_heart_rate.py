"""The heart-rate meter: its averaging, its response to rate steps, and a rate shown as lost when it is."""

from __future__ import annotations

import numpy as np

from ecgedge.analysis.heart_rate import HeartRateMeter
from ecgedge.analysis.judge import BeatJudge
from ecgedge.analysis.offline import cut_stream
from ecgedge.datasets import add_noise, change_rate, load_wfdb_record
from ecgedge.population import POPULATION_FORMAT


def _response_s(before: float, after: float, within: float = 0.05) -> float:
    """Seconds from a step of the RR interval until the meter shows the new rate within ``within``."""
    meter = HeartRateMeter()
    for _ in range(20):
        meter.add(before)
    elapsed = 0.0
    for _ in range(40):
        elapsed += after
        if abs(meter.add(after) - 60 / after) <= within * 60 / after:
            return elapsed
    raise AssertionError("never reached the new rate")


def test_the_response_to_the_rate_steps_of_iec_60601_2_27():
    assert _response_s(0.75, 0.5) == 5.5  # 80 -> 120 bpm: 11 beats of the 12 averaged
    assert _response_s(0.75, 1.5) == 6.0  # 80 -> 40 bpm: the last 4 long intervals alone


def test_a_rate_is_lost_in_noise_after_a_restart_and_after_a_long_silence():
    meter = HeartRateMeter()
    assert [meter.add(0.8) for _ in range(3)] == [None, None, None]  # fewer than 4 intervals
    assert meter.add(0.8) == 75.0
    assert meter.add(0.8, usable=False) is None and meter.rate is None
    assert [meter.add(0.8) for _ in range(4)][-1] == 75.0
    assert meter.add(7.0) is None  # asystole: no stale number
    assert meter.add(0.1) is None  # a false beat is left out, the rate stays lost


def test_every_beat_of_a_stream_carries_the_rate_and_it_follows_a_slower_stretch():
    """Record 100, diastole doubled from 4:00 to 6:00 (about 38 bpm), muscle noise at -6 dB from 7:00 to 7:15."""
    record = load_wfdb_record(lead="MLII")
    fs, n = record.fs, round(480 * record.fs)
    keep = record.beat_samples < n
    signal, reference = change_rate(record.signal[:n], fs, record.beat_samples[keep], 240.0, 2.0, stop=360.0)
    burst = slice(round(420 * fs), round(435 * fs))
    signal[burst] = add_noise(signal, fs, -6.0, ["muscle"], seed=1)[burst]
    beats = cut_stream(signal, fs, POPULATION_FORMAT)
    judge = BeatJudge(adapt_s=120.0, beat_format=POPULATION_FORMAT)
    verdicts = [judge.judge(0.0, -1.0, b) for b in beats]
    t = np.array([b.sample for b in beats]) / fs
    rate = np.array([np.nan if v.heart_rate is None else v.heart_rate for v in verdicts])
    noisy = np.array([v.quality == "noisy" for v in verdicts])
    slow = (t > 240 + 60) & (t < 240 + 120 * 2)  # a minute into the slower stretch, in the edited signal's time
    true_slow = 60 / np.median(np.diff(reference[(reference > 300 * fs) & (reference < 400 * fs)]) / fs)
    assert np.nanmax(np.abs(rate[slow] - true_slow)) < 0.1 * true_slow and true_slow < 45
    assert np.isnan(rate[noisy]).all() and noisy.sum() > 5  # lost in noise, never a number
    assert np.isfinite(rate[(t > 60) & (t < 230)]).all()
