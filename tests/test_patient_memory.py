"""The device's patient memory: learnt from the beats the population accepts, judged by distance, resumable."""

from __future__ import annotations

import numpy as np
import pytest

from ecgedge.beatformat import BeatFormat
from ecgedge.calibration import PatientMemory, RhythmContext, beat_features
from ecgedge.datasets import default_record_path, load_annotated_beats

FIXED = BeatFormat(length=59, before_r=0.25, after_r=0.40, source_fs=360.0, r_polarity=1, window_unit="s")


@pytest.fixture(scope="module")
def record_100():
    """Record 100's beats (fixed window) and their features with RR before and after, in stream order."""
    beats = load_annotated_beats(default_record_path().parent, FIXED)
    rhythm = RhythmContext()
    ratios = []
    for before, after in zip(beats.rr_before, beats.rr_after):
        ratios.append((rhythm.ratio(before), after / rhythm.mean))
    return beats, beat_features(beats.X, np.array(ratios))


def test_premature_beats_lie_far_from_the_memory(record_100):
    beats, features = record_100
    learn = beats.time < 300
    memory = PatientMemory()
    memory.learn(features[learn], accepted=beats.aami[learn] == "N", scores=np.zeros(learn.sum()))
    memory.close()
    later = ~learn
    distance = memory.distance(features[later])
    flagged = distance > memory.threshold
    normal, premature = beats.aami[later] == "N", beats.aami[later] == "SVEB"
    assert np.mean(flagged[normal]) < 0.02
    assert np.mean(flagged[premature]) > 0.5  # judged by timing: their shape is normal
    assert len(memory.beats_) == int(np.sum(beats.aami[learn] == "N"))


def test_beats_the_population_rejects_are_never_learnt():
    rng = np.random.RandomState(0)
    normal, ectopic = rng.normal(0, 0.05, (150, 8)), rng.normal(1, 0.05, (150, 8))
    bigeminy = np.empty((300, 8))
    bigeminy[0::2], bigeminy[1::2] = normal, ectopic
    verdict = np.arange(300) % 2 == 0
    memory = PatientMemory()
    memory.learn(bigeminy, accepted=verdict, scores=np.where(verdict, 0.0, -1.0))
    memory.close()
    assert np.all(memory.distance(ectopic) > memory.threshold)
    assert np.mean(memory.distance(normal) > memory.threshold) < 0.05


def test_a_window_the_population_rejects_keeps_its_more_normal_half():
    rng = np.random.RandomState(1)
    beats, scores = rng.normal(0, 1, (40, 4)), np.linspace(-1, 1, 40)
    memory = PatientMemory()
    memory.learn(beats, accepted=np.zeros(40, bool), scores=scores)
    memory.close()
    np.testing.assert_array_equal(memory.beats_, beats[20:].astype(np.float32))


def test_state_resumes_the_same_judgement_and_bad_input_is_named(record_100):
    beats, features = record_100
    memory = PatientMemory(max_beats=100)
    with pytest.raises(RuntimeError, match="still learning"):
        memory.distance(features[:1])
    memory.learn(features[:300], accepted=np.ones(300, bool), scores=np.zeros(300))
    memory.close()
    assert len(memory.beats_) == 100
    restored = PatientMemory.from_state(memory.state())
    np.testing.assert_array_equal(restored.distance(features[300:400]), memory.distance(features[300:400]))
    assert restored.threshold == memory.threshold
    with pytest.raises(RuntimeError, match="closed"):
        memory.learn(features[:1], accepted=[True], scores=[0.0])
    fresh = PatientMemory()
    with pytest.raises(ValueError, match="NaN"):
        fresh.learn(np.full((2, 3), np.nan), accepted=[True, True], scores=[0.0, 0.0])
    with pytest.raises(ValueError, match="differ"):
        fresh.learn(np.zeros((2, 3)), accepted=[True], scores=[0.0, 0.0])
    fresh.learn(np.zeros((5, 3)), accepted=np.ones(5, bool), scores=np.zeros(5))
    with pytest.raises(ValueError, match="at least 20 beats"):
        fresh.close()
    with pytest.raises(ValueError, match="positive"):
        RhythmContext().ratio(0.0)
