"""The arrhythmia alarms on test waveforms made from real records: what MIT-BIH lacks, by documented edits.

A sustained VT (a ventricular beat of the record repeated at 150 bpm,
:func:`ecgedge.datasets.insert_run`), an extreme bradycardia (diastole doubled,
:func:`~ecgedge.datasets.change_rate`), a pause (beats removed), streamed through the bridge's
offline path and judged by its :class:`BeatJudge`; asystole (a flat line) live through a hub.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgedge.analysis.alarms import AlarmLimits, ArrhythmiaAlarms
from ecgedge.analysis.atrial import ATRIAL_BEFORE_R_S
from ecgedge.analysis.judge import BeatJudge, BeatView
from ecgedge.analysis.offline import cut_stream, score_beats
from ecgedge.datasets import change_rate, fuse_beats, insert_run, load_wfdb_record
from ecgedge.population import POPULATION_FORMAT

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
needs_mitdb = pytest.mark.skipif(not (MITDB / "119.hea").exists(), reason=f"MIT-BIH records not found at {MITDB}")


def _alarms(signal: np.ndarray, fs: float, adapt_s: float = 300.0) -> list:
    """(kind, alarm, seconds) of every alarm raised or ended on a lead streamed through the offline path."""
    from ecgedge import load
    from ecgedge.models import population_model_path

    model = load(population_model_path())
    beats = cut_stream(signal, fs, POPULATION_FORMAT)
    judge = BeatJudge(adapt_s=adapt_s, beat_format=POPULATION_FORMAT)
    events = []
    for score, beat in zip(score_beats(beats, model).tolist(), beats, strict=True):
        judge.judge(score, model.offset_, beat)
        events += [(e.kind, e.alarm, e.sample / fs) for e in judge.take_events() if e.alarm]
    return events


def test_the_challenge_2015_definitions_on_rr_series():
    alarms = ArrhythmiaAlarms()
    raised = [c for i in range(40) for c in alarms.add(i * 100, 0.4, ventricular=False)]  # 150 bpm, supraventricular
    assert [(c.name, c.active) for c in raised] == [("tachy", True)] and raised[0].sample == 1600  # the 17th beat
    alarms = ArrhythmiaAlarms(AlarmLimits(vt_beats=3))
    changes = [c for i, v in enumerate([1, 1, 0, 1, 1, 1, 0]) for c in alarms.add(i, 0.5, ventricular=bool(v))]
    assert [(c.name, c.active) for c in changes] == [("vt", True), ("vt", False)] and alarms.counts == {
        "couplet": 1,
        "run": 1,
    }
    slow = ArrhythmiaAlarms().add(0, 0.9, False) + ArrhythmiaAlarms().add(1, 3.5, False)
    assert slow == []  # a pause needs a beat before it
    with pytest.raises(ValueError, match="brady below"):
        AlarmLimits(brady_bpm=150)


def test_a_regular_rhythm_and_a_vt_are_organised_which_fibrillation_never_is():
    """The judge's evidence against VF (:func:`ecgedge.analysis.fibrillation.organised`): complexes at a regular
    rate slower than fibrillation's waves, whatever their shape, and the ventricular beats of a VT."""
    from ecgedge.analysis.fibrillation import organised
    from ecgedge.analysis.judge import BeatView

    judge, shape = BeatJudge(), np.zeros(3)  # judged by the score alone: under the offset is ventricular
    paced = [judge.judge(-1.0, 0.0, BeatView(shape, 0.85, 300 * i)) for i in range(1, 12)]  # wide, regular, 70 bpm
    assert [v.organised_rhythm for v in paced] == [False] * 8 + [True] * 3  # from the 9th regular interval
    assert organised(paced[-1], -1.0, 0.0) and not organised(paced[0], -1.0, 0.0)
    judge = BeatJudge()
    run = [judge.judge(-1.0, 0.0, BeatView(shape, rr, 100 * i)) for i, rr in enumerate([0.8] + [0.3] * 7)]
    assert [v.organised_rhythm for v in run] == [False] * 4 + [
        True
    ] * 4  # the VT alarm on from the 5th ventricular beat
    assert all(v.ventricular and v.reason is None for v in run[1:])  # a reason only where a memory judged
    erratic = BeatJudge()
    rr = np.random.default_rng(1).uniform(0.2, 0.6, 20)  # as irregular as fibrillation's waves, not ventricular
    assert not any(erratic.judge(1.0, 0.0, BeatView(shape, r, 100 * i)).organised_rhythm for i, r in enumerate(rr))


@needs_mitdb
def test_a_sustained_vt_made_of_the_patients_own_ventricular_beat_alarms_within_10_s():
    record = load_wfdb_record(MITDB / "119", lead="MLII")
    fs, n = record.fs, round(600 * record.fs)
    signal, r, symbols = record.signal[:n], record.beat_samples, record.beat_symbols
    template = r[(symbols == "V") & (r > 320 * fs)][0]
    normal = r[(symbols == "N") & (r > 400 * fs)][0]
    at = normal + round(0.45 * fs)
    signal, run = insert_run(signal, fs, template, at, beats=25, rr_s=0.4)  # 10 s at 150 bpm
    events = _alarms(signal, fs)
    onset, end = run[0] / fs, run[-1] / fs
    vt = [(k, t) for k, a, t in events if a == "vt"]
    assert vt[0][0] == "alarm" and onset - 0.5 <= vt[0][1] <= onset + 1 and vt[1][0] == "alarm-over" and vt[1][1] > end
    raised_at = min(t for k, a, t in events if a == "tachy" and k == "alarm")
    assert raised_at < onset + 10
    assert len([1 for k, a, _ in events if a == "vt" and k == "alarm"]) == 1  # 119's own bigeminy is not VT


@needs_mitdb
@pytest.mark.parametrize(("weight", "fusion"), [(0.3, True), (0.8, False), (-0.8, False)])
def test_fusion_beats_make_no_couplets_and_late_ventricular_beats_do(weight, fusion):
    """119's sinus beats between a sinus beat and a ventricular one, blended with the patient's
    ventricular complex (:func:`~ecgedge.datasets.fuse_beats`): 30 % ventricular, they are fusion
    beats and make no couplet with the ventricular beat after them (one in 42 may still be read as
    ventricular); 80 %, they are late ventricular beats; and
    so are complexes that deviate as far the other way (-80 %: another focus, no blend of the two). Their P waves
    are hidden (a straight line over the stretch the judge reads them in, as the T wave hides them at a fast rate),
    so their shape alone decides."""
    from ecgedge import load
    from ecgedge.models import population_model_path

    record = load_wfdb_record(MITDB / "119", lead="MLII")
    fs, r, symbols = record.fs, record.beat_samples, record.beat_symbols
    between = (symbols[:-2] == "N") & (symbols[1:-1] == "N") & (symbols[2:] == "V")
    fused_r = r[1:-1][between & (r[1:-1] > 420 * fs) & (r[1:-1] < 700 * fs)]
    template = r[(symbols == "V") & (r > 320 * fs)][0]
    signal = fuse_beats(record.signal[: round(720 * fs)], fs, fused_r, template, weight)
    for r in fused_r:
        a, b = r - round(ATRIAL_BEFORE_R_S[0] * fs), r - round(ATRIAL_BEFORE_R_S[1] * fs)
        signal[a:b] = np.linspace(signal[a], signal[b], b - a)
    model = load(population_model_path())
    beats = cut_stream(signal, fs, POPULATION_FORMAT)
    judge = BeatJudge(adapt_s=300.0, beat_format=POPULATION_FORMAT)
    fused = []
    for score, beat in zip(score_beats(beats, model).tolist(), beats, strict=True):
        verdict = judge.judge(score, model.offset_, beat)
        if np.min(np.abs(fused_r - beat.sample)) < 0.05 * fs:
            fused.append(verdict)
    assert len(fused) == len(fused_r) == 42 and all(v.anomaly for v in fused)  # every blend is unlike the patient's
    ventricular = sum(v.ventricular for v in fused)
    if fusion:
        assert ventricular <= 1 and judge.alarms.counts["couplet"] == 0  # 0 and 0
    else:
        assert ventricular >= 15 and judge.alarms.counts["couplet"] >= 10  # 80 %: 25 and 22; -80 %: 33 and 29


def test_an_extreme_bradycardia_and_a_pause_alarm_within_10_s():
    record = load_wfdb_record(lead="MLII")  # the bundled record 100
    fs, n = record.fs, round(540 * record.fs)
    keep = record.beat_samples < n
    slow, _ = change_rate(record.signal[:n], fs, record.beat_samples[keep], 400.0, 2.3, stop=460.0)  # about 35 bpm
    events = _alarms(slow, fs)
    brady = [(k, t) for k, a, t in events if a == "brady"]
    assert brady[0][0] == "alarm" and 400 < brady[0][1] < 410 and brady[1][0] == "alarm-over"
    signal, r = record.signal[:n].copy(), record.beat_samples
    i = np.searchsorted(r, 400 * fs)
    lo, hi = r[i] + round(0.45 * fs), r[i + 5] - round(0.3 * fs)  # four beats gone: a pause of about 4 s
    signal[lo:hi] = np.linspace(signal[lo], signal[hi], hi - lo)
    pauses = [(k, t) for k, a, t in _alarms(signal, fs) if a == "pause"]
    assert [k for k, _ in pauses] == ["alarm", "alarm-over"] and abs(pauses[0][1] - r[i] / fs) < 0.2


@needs_mitdb
def test_ventricular_flutter_is_a_high_priority_alarm_from_the_waveform(population_bundle, tmp_path):
    """Record 207's first 80 s live over a pty: ventricular flutter from 0:41 (no beats to find in it)."""
    from fixtures.bridge_support import play

    from ecgedge.firmware_bridge.hub import Hub
    from ecgedge.firmware_bridge.settings import BridgeSettings, Judging
    from ecgedge.firmware_bridge.simulator import PtyEndpoint, VirtualBoard
    from ecgedge.runtime import load_scorer

    record = load_wfdb_record(MITDB / "207", lead="MLII")
    events = []
    settings = BridgeSettings(judging=Judging.adapt(30))
    hub = Hub(load_scorer(population_bundle, threads=1), settings, on_event=events.append)
    endpoint = PtyEndpoint()
    hub.add_board(endpoint.path, name="bed3")
    board = VirtualBoard(record.to_adc()[: round(80 * record.fs)], record.fs, record.adc_gain, record.baseline)
    play(hub, [(board, endpoint)], speed=20)
    vf = [e for e in events if e.name == "vf"]
    onset = record.rhythm_samples[list(record.rhythms).index("(VFL")] / record.fs
    assert vf and vf[0].condition.priority == "high" and vf[0].as_dict()["priority"] == "high"
    reached = int(vf[0].detail.split("to sample ")[1].split()[0]) / record.fs
    assert onset + 4 <= reached < onset + 10  # 4 s of flutter with no normal beat in them, within 10 s of its onset


class _SyntheticPatient:
    """A judge resumed on a memory of a narrow QRS, fed beats of that QRS or of a wide one 3 shape limits away,
    with a P wave before them or none; ``accepted_share`` of the learning window the population model accepted."""

    def __init__(self, accepted_share: float = 1.0) -> None:
        from ecgedge.analysis.atrial import ATRIAL_POINTS
        from ecgedge.analysis.judge import QRS_SPAN_S
        from ecgedge.calibration import PatientMemory

        self.rng, n = np.random.RandomState(0), POPULATION_FORMAT.length
        start, stop = POPULATION_FORMAT.columns(*QRS_SPAN_S)
        t, self.u = np.arange(n), np.linspace(-1, 1, ATRIAL_POINTS)
        self.normal = np.exp(-0.5 * ((t - 22) / 1.5) ** 2)  # a narrow QRS, median 0, peak to peak 1
        memory = PatientMemory(columns=(start, stop))
        accepted = np.arange(200) < 200 * accepted_share
        memory.learn(self.normal + self.rng.normal(0, 0.01, (200, n)), np.ones(200), accepted, np.zeros(200))
        memory.close()
        wide = np.where((t >= start) & (t < stop), -np.exp(-0.5 * ((t - 26) / 4.0) ** 2), 0.0)
        self.unlike = self.normal + wide * 3 * memory.shape_limit / np.linalg.norm(wide)
        self.marginal = self.normal + wide * 0.8 * memory.shape_limit / np.linalg.norm(wide)  # passed, not learnt
        self.judge = BeatJudge(adapt_s=300, beat_format=POPULATION_FORMAT)
        self.judge.resume(memory)
        self.sample = 0

    def p_wave(self) -> np.ndarray:
        return np.exp(-8 * self.u**2) + 0.05 * self.rng.normal(size=self.u.size)

    def no_p_wave(self) -> np.ndarray:
        return 0.05 * self.rng.normal(size=self.u.size)

    def beat(self, window: np.ndarray, rr: float, atrial: np.ndarray, score: float = 0.0):
        """Judge one beat; the population model's offset is -1 (a score of -2 is rejected)."""
        self.sample += round(rr * 360)
        return self.judge.judge(score, -1.0, BeatView(window, rr, self.sample, atrial=atrial, rr_after=0.75))


def test_a_flagged_beat_on_time_at_100_bpm_led_by_the_p_wave_is_not_ventricular():
    """A fusion beat comes when the sinus beat is due: its P wave, after the last T wave, makes it conducted."""
    patient = _SyntheticPatient()
    t_wave_end = np.where(patient.u < -0.6, 3.0 * (-0.6 - patient.u), 0.0)  # the last T wave in the first 40 ms
    for _ in range(30):  # 80 bpm, every P wave readable
        patient.beat(patient.normal, 0.75, patient.p_wave())
    on_time = patient.beat(patient.unlike, 0.65, patient.p_wave() + t_wave_end)  # 92 bpm, due (ratio 0.87)
    assert on_time.anomaly and on_time.reason == "shape" and not on_time.ventricular
    patient.beat(patient.normal, 0.85, patient.p_wave())
    no_p = patient.beat(patient.unlike, 0.65, patient.no_p_wave() + t_wave_end)
    assert no_p.anomaly and no_p.ventricular  # due, but no P wave before it
    patient.beat(patient.normal, 0.85, patient.p_wave())
    early = patient.beat(patient.unlike, 0.55, patient.p_wave() + t_wave_end)  # premature: the whole segment is read
    assert early.anomaly and early.ventricular


@pytest.mark.parametrize(
    ("accepted_share", "before", "qrs", "p_wave", "score", "goes_on"),
    [
        (1.0, 2, "marginal", False, -2.0, True),  # a couplet, then a QRS the memory passes, the model rejects
        (1.0, 1, "marginal", False, -2.0, False),  # after a single ventricular beat: the model never makes a couplet
        (1.0, 2, "marginal", False, 0.0, False),  # the model accepts it: the run has ended
        (1.0, 2, "normal", False, -2.0, False),  # the patient's own QRS (one the memory would learn): conducted
        (1.0, 2, "marginal", True, -2.0, False),  # a P wave leads it: conducted
        (0.4, 2, "marginal", False, -2.0, False),  # a patient whose learning window the model mostly rejected
    ],
)
def test_a_run_goes_on_through_a_qrs_the_memory_passes_only_where_the_population_model_rejects_it(
    accepted_share, before, qrs, p_wave, score, goes_on
):
    """A multiform run's QRS can fall inside a memory widened by the odd beats it learnt; the population model's
    rejection then keeps the run going (:data:`~ecgedge.analysis.judge.RUN_UNDER_WAY`), and only then."""
    patient = _SyntheticPatient(accepted_share)
    for _ in range(30):
        patient.beat(patient.normal, 0.75, patient.p_wave())
    run = [patient.beat(patient.unlike, 0.45, patient.no_p_wave(), score=-2.0) for _ in range(before)]
    assert all(v.ventricular for v in run)
    atrial = patient.p_wave() if p_wave else patient.no_p_wave()
    verdict = patient.beat(getattr(patient, qrs), 0.75, atrial, score=score)  # on time: as 223's at 25:52.6
    assert verdict.ventricular == goes_on
    if goes_on:
        assert verdict.anomaly and verdict.reason == "shape" and 0.5 < verdict.distance < 1  # within the limit
        assert patient.judge.alarms.counts == {"couplet": 0, "run": 0}  # counted when the run ends
        patient.beat(patient.normal, 0.75, patient.p_wave())
        assert patient.judge.alarms.counts["run"] == 1
