"""``ecgedge scan`` on real WFDB and EDF files with a real 2-process LocalCluster, the live bridge as reference."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fixtures.bridge_support import tiny_bundle

pytest.importorskip("distributed")
pyarrow_dataset = pytest.importorskip("pyarrow.dataset")
pyedflib = pytest.importorskip("pyedflib")
wfdb = pytest.importorskip("wfdb")

from ecgedge.analysis.atrial import ATRIAL_POINTS  # noqa: E402
from ecgedge.analysis.offline import run_offline  # noqa: E402
from ecgedge.beatformat import BeatFormat  # noqa: E402
from ecgedge.cli import main  # noqa: E402
from ecgedge.datasets import Annotations, add_noise, default_record_path  # noqa: E402
from ecgedge.runtime import load_scorer  # noqa: E402
from ecgedge.scan import RecordingError, Settings, discover, scan  # noqa: E402
from ecgedge.scan.results import beat_table  # noqa: E402
from ecgedge.scan.tasks import cached_scorer, plan_segments, worker_scorer  # noqa: E402

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
FS = 360
SECONDS = 150  # 2.5 minutes of MIT-BIH 100: about 190 beats
CALIBRATE = 40


def write_wfdb(
    folder: Path,
    name: str,
    seconds: float,
    *,
    lead: str = "MLII",
    fs: float = FS,
    annotations: bool = True,
    reversed_from: float | None = None,
    noisy: tuple[float, float] | None = None,
) -> Path:
    """The first ``seconds`` of the bundled MIT-BIH record 100 (MLII, ADC counts) as a WFDB record with beat labels.

    ``reversed_from``: the lead's polarity reversed from this second on (electrodes swapped);
    ``noisy``: muscle noise at -6 dB from the first to the second of these seconds.
    """
    record = wfdb.rdrecord(str(default_record_path()), channels=[0], physical=False, sampto=int(seconds * FS))
    if reversed_from is not None:
        start = int(reversed_from * FS)
        record.d_signal[start:] = 2 * record.baseline[0] - record.d_signal[start:]
    if noisy is not None:
        gain, baseline, counts = record.adc_gain[0], record.baseline[0], record.d_signal[:, 0]
        burst = slice(int(noisy[0] * FS), int(noisy[1] * FS))
        mv = add_noise((counts - baseline) / gain, FS, -6.0, ["muscle"], seed=5)
        counts[burst] = np.round(mv[burst] * gain + baseline).astype(counts.dtype)
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"],
        sig_name=[lead],
        d_signal=record.d_signal,
        fmt=["16"],
        adc_gain=record.adc_gain,
        baseline=record.baseline,
        write_dir=str(folder),
    )
    if annotations:
        ann = wfdb.rdann(str(default_record_path()), "atr", sampto=int(seconds * FS))
        wfdb.wrann(name, "atr", np.asarray(ann.sample), symbol=ann.symbol, write_dir=str(folder))
    return folder / name


def write_stopped_heart(folder: Path, name: str, *, flat: tuple[int, ...], flutter: bool) -> Path:
    """Both leads of the bundled record 100's first 150 s: the ``flat`` leads a flat line from 100 s to 107 s (a stopped
    heart in both leads, or one electrode lifted), and with ``flutter`` 12 s of 4.5 Hz waves from 60 s in both."""
    record = wfdb.rdrecord(str(default_record_path()), physical=False, sampto=SECONDS * FS)
    rng = np.random.RandomState(0)
    for lead in range(record.n_sig):
        gain, baseline = record.adc_gain[lead], record.baseline[lead]
        if flutter:
            t = np.arange(12 * FS) / FS
            record.d_signal[60 * FS : 72 * FS, lead] = np.round(baseline + gain * np.sin(2 * np.pi * 4.5 * t))
        if lead in flat:  # never still: a flat line of a few counts, as an amplifier's noise gives
            record.d_signal[100 * FS : 107 * FS, lead] = baseline + rng.randint(-2, 3, 7 * FS)
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=FS,
        units=record.units,
        sig_name=record.sig_name,
        d_signal=record.d_signal,
        fmt=["16"] * record.n_sig,
        adc_gain=record.adc_gain,
        baseline=record.baseline,
        write_dir=str(folder),
    )
    return folder / name


def write_edf(path: Path, seconds: float) -> Path:
    """The same excerpt, in mV, as an EDF file written by pyedflib."""
    record = wfdb.rdrecord(str(default_record_path()), channels=[0], sampto=int(seconds * FS))
    header = pyedflib.highlevel.make_signal_header(
        "MLII", dimension="mV", sample_frequency=FS, physical_min=-5.0, physical_max=5.0
    )
    pyedflib.highlevel.write_edf(str(path), [record.p_signal[:, 0]], [header])
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def excerpt(tmp_path_factory):
    return write_wfdb(tmp_path_factory.mktemp("records"), "r100", SECONDS)


@pytest.fixture(scope="module")
def noisy_excerpt(tmp_path_factory):
    """The excerpt with 15 s of muscle noise from 90 s: beats read noisy, then clean again."""
    return write_wfdb(tmp_path_factory.mktemp("noisy"), "r100n", SECONDS, noisy=(90.0, 105.0))


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local,
        Client(local) as client,
    ):
        yield local, client


def offline_beats(excerpt: Path, bundle: Path, judging: dict | None = None):
    """The whole excerpt through the offline path in one pass, in this process."""
    record = wfdb.rdrecord(str(excerpt), physical=False)
    signal = (record.d_signal[:, 0].astype(np.float64) - record.baseline[0]) / record.adc_gain[0]  # mV, as the bridge
    judging = judging or {"calibration_beats": CALIBRATE}
    return run_offline(signal, FS, load_scorer(bundle, threads=1), **judging)


def live_beats(excerpt: Path, bundle: Path, judging: dict):
    """The excerpt played by a virtual board over a real pty into the bridge's Hub."""
    from ecgedge.firmware_bridge.hub import Hub
    from ecgedge.firmware_bridge.settings import BridgeSettings, Judging
    from ecgedge.firmware_bridge.simulator import PtyEndpoint, VirtualBoard, run_boards

    calibrate = judging.get("calibration_beats")
    mode = Judging.calibrate(calibrate) if calibrate else Judging.adapt(judging["adapt_s"])
    # nothing shed however slow the machine: the equivalence is the subject, not the overload policy
    settings = BridgeSettings(judging=mode, max_lag_s=3600.0, beat_deadline_s=3600.0)
    hub = Hub(load_scorer(bundle, threads=1), settings)
    endpoint = PtyEndpoint()
    hub.add_board(endpoint.path, name="bed")
    scored = []
    hub.on_beats = scored.extend
    stop, summary = threading.Event(), {}
    runner = threading.Thread(target=lambda: summary.update(hub.run(stop=stop)))
    runner.start()
    try:
        run_boards([(VirtualBoard.from_record(excerpt), endpoint)], speed=20, wait_reader=60, flow_control=True)
        assert hub.wait_until_quiet(quiet=1.0, timeout=120.0), "the hub never caught up"
    finally:
        stop.set()
        runner.join()
        endpoint.close()
    assert summary["shed_samples"] == summary["shed_beats"] == summary["frames_lost"] == 0, summary
    return scored


def read_beats(out: Path, name: str):
    table = pyarrow_dataset.dataset(out / "beats", partitioning="hive").to_table(
        filter=pyarrow_dataset.field("recording") == name
    )
    return table.sort_by("sample").to_pydict()


def rows_of(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / "summary").glob("*.json")}


@pytest.mark.parametrize(
    "judging", [{"calibration_beats": CALIBRATE}, {"adapt_s": 40.0}], ids=["calibrated", "adapted"]
)
def test_offline_path_equals_the_live_bridge(noisy_excerpt, bundle, judging):
    live, offline = live_beats(noisy_excerpt, bundle, judging), offline_beats(noisy_excerpt, bundle, judging)
    assert len(offline) > 150
    assert [s.beat.sample for s in live] == [s.beat.sample for s in offline]
    np.testing.assert_allclose([s.score for s in live], [s.score for s in offline], rtol=1e-5, atol=1e-6)
    learning = [s.learning for s in offline]
    assert [s.learning for s in live] == learning == [True] * sum(learning) + [False] * (len(offline) - sum(learning))
    assert [s.anomaly for s in live] == [s.anomaly for s in offline]
    # the layers below the flags too: the rhythm read, the signal quality, the heart rate, the reasons
    assert [s.verdict.rhythm for s in live] == [s.verdict.rhythm for s in offline]
    assert {s.verdict.rhythm for s in offline} == {"unknown", "sinus"}  # record 100: read as sinus once known
    assert [s.verdict.quality for s in live] == [s.verdict.quality for s in offline]
    assert 10 <= sum(s.verdict.quality == "noisy" for s in offline) <= 30  # the burst's beats, about 20
    assert [s.verdict.heart_rate for s in live] == [s.verdict.heart_rate for s in offline]
    assert [s.verdict.reason for s in live] == [s.verdict.reason for s in offline]
    if "calibration_beats" in judging:
        assert sum(learning) == CALIBRATE
        assert [s.threshold for s in live][-1] == pytest.approx(offline[-1].threshold, rel=1e-6)
    else:  # 40 s of beats learnt, then judged by the same patient memory live and offline
        assert 40 <= sum(learning) <= 60 and {s.verdict.mode for s in offline[sum(learning) :]} == {"adapted"}
        np.testing.assert_allclose(
            [s.verdict.distance for s in live[sum(learning) :]],
            [s.verdict.distance for s in offline[sum(learning) :]],
            rtol=1e-4,
            atol=1e-6,
        )


def test_segmented_scan_on_two_workers_equals_one_pass(excerpt, bundle, cluster, tmp_path):
    local, client = cluster
    # 50 s tasks, each streamed from 40 s before it (the last segment starts cold at 60 s), in 10 s blocks
    # (a bridge catching up on a backlog) against 0.1 s blocks in one pass
    settings = Settings(
        bundle=str(bundle), leads=("V5", "MLII"), calibration_beats=CALIBRATE, segment_s=50, overlap_s=40, block_s=10
    )
    report = scan(
        [excerpt.parent], tmp_path, settings, scheduler=local.scheduler_address, progress=False, echo=lambda s: None
    )
    assert [r["status"] for r in report.rows] == ["done"] and report.rows[0]["segments"] == 3
    beats, offline = read_beats(tmp_path, "r100"), offline_beats(excerpt, bundle)
    assert beats["sample"] == [s.beat.sample for s in offline]
    np.testing.assert_allclose(beats["score"], [s.score for s in offline], rtol=1e-5, atol=1e-6)
    assert beats["flag"] == [s.anomaly for s in offline] and beats["learning"] == [s.learning for s in offline]
    np.testing.assert_allclose(beats["time"], np.array(beats["sample"]) / FS)
    # the reference labels travel with the beats; the summary scores the detection against them
    row = report.rows[0]
    assert set(beats["label"]) <= {"N", "A", "V", None} and beats["aami"].count("N") > 150
    assert (
        row["lead"] == "MLII" and row["qrs_se"] > 0.98 and row["qrs_ppv"] > 0.98 and row["learning_beats"] == CALIBRATE
    )
    assert (
        row["flagged"] == sum(beats["flag"])
        and row["N_beats"] + row["SVEB_beats"] + row["VEB_beats"] <= row["beats"] - CALIBRATE
    )
    # three tasks, two workers: the bundle was loaded once in each worker process that ran one
    loads = client.run(lambda: cached_scorer.cache_info().misses)
    assert sorted(loads.values()) in ([1, 1], [0, 1])


def test_a_segmented_scan_adapts_to_the_patient_as_the_bridge_does(excerpt, bundle, cluster, tmp_path):
    local, _ = cluster
    settings = Settings(
        bundle=str(bundle), calibration_beats=None, adapt_s=40.0, segment_s=50, overlap_s=40, block_s=10
    )
    report = scan(
        [excerpt.parent], tmp_path, settings, scheduler=local.scheduler_address, progress=False, echo=lambda s: None
    )
    assert [r["status"] for r in report.rows] == ["done"]
    beats, offline = read_beats(tmp_path, "r100"), offline_beats(excerpt, bundle, {"adapt_s": 40.0})
    assert beats["sample"] == [s.beat.sample for s in offline]
    assert beats["mode"] == [s.verdict.mode for s in offline] and beats["flag"] == [s.anomaly for s in offline]
    adapted = [i for i, mode in enumerate(beats["mode"]) if mode == "adapted"]
    np.testing.assert_allclose(
        [beats["distance"][i] for i in adapted], [offline[i].verdict.distance for i in adapted], rtol=1e-4, atol=1e-6
    )
    assert report.rows[0]["learning"] == "adapted to the patient over the first 40 s" and len(adapted) > 100
    # the rhythm and quality of every beat, as the offline path reads them; record 100 is sinus rhythm
    assert beats["rhythm"] == [s.verdict.rhythm for s in offline] and beats["quality"] == [
        s.verdict.quality for s in offline
    ]
    assert set(beats["rhythm"][40:]) == {"sinus"}
    row = report.rows[0]
    assert (
        row["af_burden"] == 0.0
        and row["af_episode_count"] == 0
        and row["af_episodes"] == []
        and row["noisy_beats"] == 0
    )
    assert row["relearned"] == 0 and row["relearned_at_s"] == []


def test_a_scan_says_when_the_patient_memory_learnt_a_new_complex(population_bundle, cluster, tmp_path):
    """The electrodes swapped at 60 s, after 40 s of learning: every QRS changes, the P waves still lead them."""
    local, _ = cluster
    write_wfdb(tmp_path / "records", "swapped", SECONDS, reversed_from=60.0)
    settings = Settings(bundle=str(population_bundle), calibration_beats=None, adapt_s=40.0)
    report = scan(
        [tmp_path / "records"],
        tmp_path / "out",
        settings,
        scheduler=local.scheduler_address,
        progress=False,
        echo=lambda s: None,
    )
    row = report.rows[0]
    assert row["status"] == "done" and row["relearned"] == 1 and 60 <= row["relearned_at_s"][0] < 65
    beats = read_beats(tmp_path / "out", "swapped")
    # after 60 beats at ~75 bpm
    after = [f for t, f in zip(beats["time"], beats["flag"], strict=True) if t > 60 + 60 * 60 / 75 + 5]
    assert len(after) > 20 and sum(after) <= 1


def test_a_scan_counts_the_alarms_the_hub_raises_from_the_signal(population_bundle, cluster, tmp_path):
    """VF / flutter, asystole and pauses, across segment boundaries; the second lead withholds a one-lead silence.

    The population model's window is fixed in time: an RR-scaled one (the tiny bundle's) cannot cut the beat
    that ends an 8 s silence, and a pause is read from that beat."""
    local, _ = cluster
    write_stopped_heart(tmp_path / "records", "stopped", flat=(0, 1), flutter=True)
    write_stopped_heart(tmp_path / "records", "lifted", flat=(0,), flutter=False)

    def rows(confirm_leads: bool, out: str) -> dict:
        settings = Settings(
            bundle=str(population_bundle),
            calibration_beats=None,
            adapt_s=40.0,
            segment_s=50,
            overlap_s=40,
            confirm_leads=confirm_leads,
        )
        report = scan(
            [tmp_path / "records"],
            tmp_path / out,
            settings,
            scheduler=local.scheduler_address,
            progress=False,
            echo=lambda s: None,
        )
        return {row["recording"]: row for row in report.rows}

    confirmed = rows(True, "confirmed")
    kinds = ("vf_alarms", "asystole_alarms", "pause_alarms")
    assert [confirmed["stopped"][k] for k in kinds] == [1, 1, 1]
    assert [confirmed["lifted"][k] for k in kinds] == [0, 0, 0]  # V5 beats on: no asystole, no pause
    one_lead = rows(False, "one-lead")["lifted"]
    assert (one_lead["asystole_alarms"], one_lead["pause_alarms"]) == (1, 1)  # the beat lead alone cannot tell


@pytest.mark.skipif(not (MITDB / "207.hea").exists(), reason=f"MIT-BIH records not found at {MITDB}")
def test_a_scan_scores_its_alarms_as_ecgedge_evaluate_does(population_bundle, cluster, tmp_path):
    """Two annotated records (207: flutter, an idioventricular rhythm; 223: VT, runs, couplets) scanned as an
    archive: their alarm figures are those of the evaluation path on the same beats and scores, to the digit."""
    from ecgedge.analysis.offline import cut_stream, score_beats
    from ecgedge.datasets import load_other_leads, load_wfdb_record
    from ecgedge.evaluation_alarms import AlarmTrace, score_record

    local, _ = cluster
    settings = Settings(bundle=str(population_bundle), calibration_beats=None, adapt_s=300.0)
    report = scan(
        [MITDB / "207.hea", MITDB / "223.hea"],
        tmp_path / "out",
        settings,
        scheduler=local.scheduler_address,
        progress=False,
        echo=lambda s: None,
    )
    scorer = worker_scorer(settings)
    for row in report.rows:
        name = row["recording"]
        record = load_wfdb_record(MITDB / name, lead="MLII")
        beats = cut_stream(record.signal, record.fs, scorer.beat_format, name=name)
        trace = AlarmTrace(
            np.full(len(beats), name), [b.sample for b in beats], score_beats(beats, scorer), scorer.offset_
        )
        trace.judge(beats, scorer.offset_, 300.0, scorer.beat_format)
        others = load_other_leads(MITDB / name, "MLII")
        expected = score_record(record, trace, name, learning_s=300.0, other_leads=others)
        assert row["alarm_scores"] == json.loads(json.dumps(expected, default=float)), name
    scores = {row["recording"]: row["alarm_scores"] for row in report.rows}
    assert scores["207"]["vf"]["found"] >= 1 and scores["223"]["run"]["found"] >= 1  # figures with something in them


def test_bad_recordings_fail_alone_and_a_rerun_resumes(excerpt, bundle, cluster, tmp_path):
    archive = tmp_path / "archive"
    shutil.copytree(excerpt.parent, archive / "ward1")
    edf = write_edf(archive / "ward1" / "r100-export.edf", SECONDS)
    write_wfdb(archive / "ward2", "truncated", SECONDS)
    dat = archive / "ward2" / "truncated.dat"
    dat.write_bytes(dat.read_bytes()[:20_000])
    write_wfdb(archive / "ward2", "v5only", SECONDS, lead="V5")
    write_wfdb(archive / "ward2", "slow", SECONDS, fs=50)
    write_wfdb(archive / "ward2", "short", 20)
    (archive / "ward2" / "garbage.edf").write_bytes(b"not an EDF file at all" * 20)
    shutil.copy(excerpt.with_suffix(".dat"), archive / "ward2" / "headless.dat")
    out = tmp_path / "out"
    args = [
        "scan",
        str(archive),
        "--out",
        str(out),
        "--bundle",
        str(bundle),
        "--lead",
        "MLII",
        "--calibrate",
        str(CALIBRATE),
        "--segment-minutes",
        "1",
        "--overlap-s",
        "30",
        "--block-s",
        "10",
        "--no-progress",
    ]

    result = CliRunner().invoke(main, [*args, "--workers", "2"])  # a LocalCluster of its own
    assert result.exit_code == 1, result.output
    assert "dashboard: http" in result.output and "6 recording(s) failed" in result.output
    done = [line for line in result.output.splitlines() if "\tdone\t" in line]
    assert len(done) == 2 and all(line.endswith(" alarms: none") for line in done)  # record 100 raises none
    # the annotated record's alarms scored as `ecgedge evaluate --wfdb` prints them; the EDF export has no reference
    assert "alarms against the reference annotations of 1 recording(s):" in result.output
    assert "| ventricular couplets | 0 | - | 0 | - |" in result.output
    rows = rows_of(out)
    assert rows["ward1__r100"]["alarm_scores"]["vt"]["alarms"] == 0 and "alarm_scores" not in rows["ward1__r100-export"]
    assert {name: row["status"] for name, row in rows.items()} == {
        "ward1__r100": "done",
        "ward1__r100-export": "done",
        "ward2__truncated": "failed",
        "ward2__v5only": "failed",
        "ward2__slow": "failed",
        "ward2__short": "failed",
        "ward2__garbage": "failed",
        "ward2__headless": "failed",
    }
    errors = {name: row["error"] for name, row in rows.items() if row["error"]}
    assert "truncated" in errors["ward2__truncated"]
    assert "['MLII']" in errors["ward2__v5only"] and "['V5']" in errors["ward2__v5only"]
    assert "50 Hz" in errors["ward2__slow"]
    assert "too short" in errors["ward2__short"] and f"needs {CALIBRATE} beats" in errors["ward2__short"]
    assert "unreadable EDF" in errors["ward2__garbage"]
    assert "unreadable WFDB header" in errors["ward2__headless"]
    # the EDF export of the same excerpt gives the same beats (finer quantisation: scores to a looser tolerance)
    wfdb_beats, edf_beats = read_beats(out, "ward1__r100"), read_beats(out, "ward1__r100-export")
    assert edf_beats["sample"] == wfdb_beats["sample"] and set(edf_beats["label"]) == {None}
    np.testing.assert_allclose(edf_beats["score"], wfdb_beats["score"], rtol=0.05)
    summary = pyarrow_dataset.dataset(out / "summary.parquet").to_table().to_pydict()
    assert len(summary["recording"]) == 8 and "flags_per_hour" in summary and "alarm_scores" not in summary

    # a re-run skips what is done and unchanged (a touched file is re-hashed, same content), retries the rest
    written = (out / "beats" / "recording=ward1__r100" / "part-0.parquet").stat().st_mtime_ns
    edf.touch()
    shutil.copy(excerpt.with_suffix(".dat"), dat)
    result = CliRunner().invoke(main, [*args, "--scheduler", cluster[0].scheduler_address])
    assert "8 recording(s), 6 scanned, 5 failed" in result.output, result.output
    assert rows_of(out)["ward2__truncated"]["status"] == "done"
    assert (out / "beats" / "recording=ward1__r100" / "part-0.parquet").stat().st_mtime_ns == written


def test_what_cannot_be_scanned_is_named(tmp_path, excerpt):
    with pytest.raises(RecordingError, match="no such file"):
        discover([tmp_path / "missing"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(RecordingError, match="neither a WFDB record nor an EDF file"):
        discover([tmp_path / "notes.txt"])
    assert [r.name for r in discover([excerpt])] == ["r100"]
    from ecgedge.scan.recordings import read_header

    header = read_header(discover([excerpt])[0])
    assert plan_segments(header, Settings(bundle="b", segment_s=60)) == [(0, 21600), (21600, 43200), (43200, 54000)]


def test_reference_beats_of_no_aami_class_are_q_and_beats_without_a_reference_have_none():
    """EC57: an unclassifiable reference beat (``?``) or one outside the five classes (``B``) is Q."""
    n = 8
    part = {
        "sample": 100 + 360 * np.arange(n, dtype=np.int64),
        "score": np.zeros(n),
        "rr": np.ones(n),
        "rr_after": np.ones(n),
        "own_length": np.zeros(n, dtype=np.int64),
        "noise": np.zeros(n),
        "atrial": np.full((n, ATRIAL_POINTS), np.nan, dtype=np.float32),
        "offset": -1.0,
        "beat_format": BeatFormat(140).to_dict(),
        **{key: np.empty(0, dtype=np.int64) for key in ("vf_end", "block_end", "other_peaks")},
        **{key: np.empty(0, dtype=bool) for key in ("vf_waves", "readable")},
    }
    no_rhythms = (np.empty(0, dtype=np.int64), np.empty(0, dtype="<U8"))
    reference = Annotations(100 + 360 * np.arange(5), np.array(["N", "?", "B", "V", "/"]), *no_rhythms)
    columns, stats = beat_table([part], 360.0, float(n), None, reference)
    assert columns["aami"].tolist() == ["N", "Q", "Q", "VEB", "Q", None, None, None]
    assert (stats["N_beats"], stats["Q_beats"], stats["VEB_beats"]) == (1, 3, 1)
