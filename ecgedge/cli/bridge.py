"""``ecgedge simulate`` (a virtual ECG board), ``ecgedge bridge`` (board -> flagged beats), ``ecgedge demo``."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import sys
import threading
from dataclasses import replace

import click

from ecgedge.analysis.alarms import AlarmLimits
from ecgedge.analysis.judge import DEFAULT_ADAPT_S
from ecgedge.cli.demo import demo
from ecgedge.cli.options import FiniteFloat, http_address, serve_page
from ecgedge.firmware_bridge.settings import BoardSpec, BridgeSettings, Judging

_SETTINGS = BridgeSettings()  # the option defaults are the settings' own
_LIMITS = AlarmLimits()
_BOARD = BoardSpec("default")
#: The alarm-limit options by the name ``--bed-limit`` knows them (the option without its dashes) -> AlarmLimits field.
BED_LIMITS = {
    "asystole": "asystole_s",
    "vt-beats": "vt_beats",
    "vt-bpm": "vt_bpm",
    "brady-bpm": "brady_bpm",
    "brady-beats": "brady_beats",
    "tachy-bpm": "tachy_bpm",
    "tachy-beats": "tachy_beats",
    "pause": "pause_s",
}


@click.command()
@click.option(
    "--record",
    type=click.Path(dir_okay=False),
    default=None,
    help="WFDB record (path without extension). Default: the bundled MIT-BIH record 100.",
)
@click.option("--lead", default="MLII", show_default=True, help="Lead to stream (first, the bridge's beat lead).")
@click.option(
    "--other-leads/--one-lead",
    default=True,
    show_default=True,
    help="Send the record's other leads after it, as a multi-lead front end does (binary format only).",
)
@click.option(
    "--speed", type=FiniteFloat(min=0, min_open=True), default=1.0, show_default=True, help="Times real time."
)
@click.option("--format", "fmt", type=click.Choice(["binary", "ascii"]), default="binary", show_default=True)
@click.option("--pty", "use_pty", is_flag=True, help="Serve on a new pseudo-terminal (its path is printed).")
@click.option(
    "--port", default=None, help="Serve on a pyserial URL instead; socket://HOST:PORT listens for the bridge."
)
@click.option(
    "--link",
    type=click.Path(),
    default=None,
    help="With --pty: keep this symlink pointing at the pty (survives --disconnect-every).",
)
@click.option(
    "--corrupt-rate",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Per-byte probability of a bit error.",
)
@click.option(
    "--drop-rate",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Per-frame probability of a lost frame.",
)
@click.option(
    "--disconnect-every",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Unplug every S wall-clock seconds ...",
)
@click.option(
    "--downtime", type=click.FloatRange(min=0), default=0.5, show_default=True, help="... for this many seconds."
)
@click.option(
    "--start", "start_s", type=click.FloatRange(min=0), default=0.0, help="Seconds into the record to start at."
)
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds of the record to play (default: all).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault injection.")
@click.option(
    "--flow-control",
    is_flag=True,
    help="Wait (up to 30 s) for a reader that falls behind instead of losing frames, as a UART with RTS/CTS would.",
)
def simulate(
    record,
    lead,
    other_leads,
    speed,
    fmt,
    use_pty,
    port,
    link,
    corrupt_rate,
    drop_rate,
    disconnect_every,
    downtime,
    start_s,
    duration_s,
    seed,
    flow_control,
) -> None:
    """Stream an ECG record like a board would, over a pty or a socket, with faults on request."""
    from ecgedge.firmware_bridge.simulator import VirtualBoard, open_endpoint, run_boards

    if use_pty == (port is not None):
        raise click.UsageError("give exactly one of --pty and --port URL")
    if link is not None and not use_pty:
        raise click.UsageError("--link goes with --pty")
    try:
        board = VirtualBoard.from_record(
            record,
            lead=lead,
            other_leads=other_leads and fmt == "binary",
            start_s=start_s,
            duration_s=duration_s,
            fmt=fmt,
            corrupt_rate=corrupt_rate,
            drop_rate=drop_rate,
            seed=seed,
        )
        endpoint = open_endpoint(port, link=link)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    stop = _stop_on_signals()  # before the port is announced: whoever reads it may signal at once
    where = getattr(endpoint, "path", None) or getattr(endpoint, "url", port)
    click.echo(f"port: {where}")
    click.echo(
        f"streaming {board.adc.size / board.fs:.0f} s of {', '.join(board.hello.leads)} at {board.fs:g} Hz, "
        f"{speed:g}x real time ({fmt})",
        err=True,
    )
    sys.stdout.flush()
    try:
        run_boards(
            [(board, endpoint)],
            speed=speed,
            disconnect_every=disconnect_every,
            downtime=downtime,
            stop=stop,
            flow_control=flow_control,
        )
    except TimeoutError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        endpoint.close()
    click.echo("simulate: " + json.dumps(board.stats.as_dict()))


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM / SIGINT, so the command ends cleanly and says what it did."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _print_beats(all_beats: bool, fs_of, out):
    """Print flagged (or all) beats of each committed micro-batch, and when a stream has learnt its patient."""
    learning: set[str] = set()

    def show(scored) -> None:
        for s in scored:
            b, v = s.beat, s.verdict
            if s.learning:
                learning.add(b.stream)
            elif b.stream in learning:
                learning.discard(b.stream)
                learnt = "adapted to the patient" if v.mode == "adapted" else f"threshold={s.threshold:.4f}"
                click.echo(f"learnt {b.stream} {learnt}: flagging from sample {b.sample}", file=out)
            if s.anomaly or all_beats:
                tag = "FLAG" if s.anomaly else "beat"
                judged = (
                    f"threshold={v.threshold:.4f}"
                    if v.mode == "fixed"
                    else f"distance={v.distance:.3f}"
                    if v.mode == "adapted"
                    else "learning"
                )
                why = f"reason={v.reason} " if v.reason else ""
                click.echo(
                    f"{tag} {b.stream} sample={b.sample} t={b.sample / fs_of(b.stream):.2f}s score={s.score:.4f} "
                    f"rhythm={v.rhythm} quality={v.quality} {why}{judged}{' gap' if b.gap else ''}",
                    file=out,
                )
        out.flush()

    return show


def bed_and_url(port: str) -> tuple[str | None, str]:
    """``"bed12=/dev/ttyUSB0"`` -> ``("bed12", "/dev/ttyUSB0")``; a plain URL (``=`` and all) -> ``(None, URL)``."""
    label, sep, url = port.partition("=")
    if sep and url and re.fullmatch(r"[A-Za-z0-9_.-]+", label):
        return label, url
    return None, port


def _print_event(event) -> None:
    """Events always go to stderr, whatever stdout carries."""
    click.echo(f"EVENT {event}", err=True)


@click.command()
@click.option(
    "--port",
    "ports",
    multiple=True,
    required=True,
    metavar="[BED=]URL",
    help=(
        "Board URL: /dev/ttyUSB0, a pty path, socket://HOST:PORT, optionally named: bed12=/dev/ttyUSB0. "
        "Repeat for several boards (unnamed ones are board0, board1, ...)."
    ),
)
@click.option(
    "--bundle",
    "bundle_dir",
    type=click.Path(exists=True, file_okay=False),
    required=True,
    help="Deployment bundle directory (ecgedge export).",
)
@click.option("--precision", type=click.Choice(["fp32", "int8", "fp16"]), default="fp32", show_default=True)
@click.option(
    "--backend", type=click.Choice(["onnxruntime", "tensorrt", "torch"]), default="onnxruntime", show_default=True
)
@click.option("--format", "fmt", type=click.Choice(["binary", "ascii"]), default="binary", show_default=True)
@click.option(
    "--fs",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="ASCII: sample rate in Hz (binary boards send it).",
)
@click.option(
    "--gain",
    type=FiniteFloat(min=0, min_open=True),
    default=_BOARD.gain,
    show_default=True,
    help="ASCII: ADC counts per mV.",
)
@click.option(
    "--baseline",
    type=click.IntRange(-(2**31), 2**31 - 1),
    default=_BOARD.baseline,
    show_default=True,
    help="ASCII: ADC count of 0 mV.",
)
@click.option("--lead", default=None, help="Lead of a multi-lead board (default: the first).")
@click.option(
    "--polarity",
    type=click.Choice(["positive", "negative", "auto"]),
    default="positive",
    show_default=True,
    help="R-wave direction in the board's lead (MLII: positive).",
)
@click.option(
    "--adapt",
    "adapt_s",
    type=click.FloatRange(min=0),
    default=None,
    help=(
        "Adapt to each patient over the stream's first S seconds (logged as learning, not flagged), then judge "
        "by the patient's memory. Default 300, unless --calibrate; 0: judge by the bundle's threshold."
    ),
)
@click.option(
    "--calibrate",
    type=click.IntRange(min=2),
    default=None,
    help="Instead of --adapt: learn each stream's score threshold from its first N beats (logged, not flagged).",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite database (WAL) of every beat, each anomaly's waveform and every event.",
)
@click.option("--durable", is_flag=True, help="With --db: fsync every commit (survives power loss, not only a crash).")
@click.option(
    "--jsonl",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    help="JSON lines file of every beat and event ('-': stdout, which then carries nothing else).",
)
@click.option(
    "--jsonl-max-mb",
    type=click.FloatRange(min=0),
    default=64.0,
    show_default=True,
    help="Rotate the JSON lines file past this size (NAME.1, NAME.2, ...); 0: never.",
)
@click.option(
    "--jsonl-backups", type=click.IntRange(min=1), default=4, show_default=True, help="Rotated JSON lines files kept."
)
@click.option(
    "--keep-hours",
    type=click.FloatRange(min=0),
    default=24.0,
    show_default=True,
    help=(
        "With --db: keep the beats of this many hours before the newest (learning beats and patient memories "
        "always); 0: all."
    ),
)
@click.option(
    "--keep-events-days",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="With --db: keep the events of this many days; 0: all.",
)
@click.option(
    "--keep-strips",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="With --db: alarm strips kept (about 12 KB each).",
)
@click.option("--all-beats", is_flag=True, help="Print every beat, not only the flagged ones.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after S seconds (default: until interrupted).",
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Scorer threads (per worker)."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help=(
        "Processes that serve the boards, each a group of them (at most one per board); this process writes "
        "every output. 1: all in this process."
    ),
)
@click.option(
    "--no-beats",
    "no_beats_s",
    type=click.FloatRange(min=0, min_open=True),
    default=_SETTINGS.no_beats_s,
    show_default=True,
    help="Raise no-beats after S seconds of signal without an R peak.",
)
@click.option(
    "--confirm-leads/--beat-lead-only",
    "confirm_leads",
    default=_SETTINGS.confirm_leads,
    show_default=True,
    help="Asystole only when no lead of the board shows an R peak (multi-lead confirmation), or from the beat lead "
    "alone.",
)
@click.option(
    "--no-data",
    "no_data_s",
    type=click.FloatRange(min=0, min_open=True),
    default=_SETTINGS.no_data_s,
    show_default=True,
    help="Raise no-data after S seconds connected without a valid frame.",
)
@click.option(
    "--max-lag",
    "max_lag_s",
    type=click.FloatRange(min=0, min_open=True),
    default=_SETTINGS.max_lag_s,
    show_default=True,
    help="Overload: shed samples queued more than S seconds.",
)
@click.option(
    "--asystole",
    "asystole_s",
    type=click.FloatRange(min=0, min_open=True),
    default=_LIMITS.asystole_s,
    show_default=True,
    help="Alarm (high): seconds of usable signal without a beat.",
)
@click.option(
    "--vt-beats",
    type=click.IntRange(min=1),
    default=_LIMITS.vt_beats,
    show_default=True,
    help="Alarm (high): ventricular beats in a row ...",
)
@click.option(
    "--vt-bpm",
    type=FiniteFloat(min=0, min_open=True),
    default=_LIMITS.vt_bpm,
    show_default=True,
    help="... faster than this: ventricular tachycardia.",
)
@click.option(
    "--brady-bpm",
    type=FiniteFloat(min=0, min_open=True),
    default=_LIMITS.brady_bpm,
    show_default=True,
    help="Alarm (high): heart rate under this ...",
)
@click.option(
    "--brady-beats",
    type=click.IntRange(min=1),
    default=_LIMITS.brady_beats,
    show_default=True,
    help="... for this many beats in a row: extreme bradycardia.",
)
@click.option(
    "--tachy-bpm",
    type=FiniteFloat(min=0, min_open=True),
    default=_LIMITS.tachy_bpm,
    show_default=True,
    help="Alarm (high): heart rate over this ...",
)
@click.option(
    "--tachy-beats",
    type=click.IntRange(min=1),
    default=_LIMITS.tachy_beats,
    show_default=True,
    help="... for this many beats in a row: extreme tachycardia.",
)
@click.option(
    "--pause",
    "pause_s",
    type=click.FloatRange(min=0, min_open=True),
    default=_LIMITS.pause_s,
    show_default=True,
    help="Alarm (medium): an RR interval longer than S seconds.",
)
@click.option(
    "--bed-limit",
    "bed_limits",
    multiple=True,
    metavar="BED:LIMIT=VALUE",
    help=(
        "One named board's alarm limit over the bridge's, e.g. bed12:tachy-bpm=180 (a child's rates are not an "
        "adult's); LIMIT is an alarm option above without its dashes. Repeatable."
    ),
)
@click.option(
    "--open-timeout",
    type=click.FloatRange(min=0),
    default=_SETTINGS.open_timeout,
    show_default=True,
    help="Seconds to try opening each port at start before giving up (exit 1).",
)
@click.option(
    "--http",
    "http",
    default=None,
    metavar="HOST:PORT",
    help="Serve the live bedside page here (the [view] extra; loopback unless you name another address).",
)
@click.option(
    "--http-token",
    envvar="ECGEDGE_HTTP_TOKEN",
    default=None,
    help=(
        "The page's access token, at least 16 characters (env ECGEDGE_HTTP_TOKEN; default: a new random one, "
        "printed on stderr)."
    ),
)
def bridge(ports, bundle_dir, precision, backend, all_beats, duration, threads, workers, http, http_token, **options):
    """Read ECG boards, flag abnormal beats live, log them, report every lapse of monitoring, and summarise at the end.

    Events (link-down/up, board-error, no-data, lead-off, no-signal, no-beats,
    overload, worker-down, noisy and their ends; rhythm-change, relearned; the
    arrhythmia alarms asystole, vf, vt, brady, tachy, pause with their priority and
    ends) go to stderr and to every sink; every beat carries its rhythm, signal
    quality and heart rate. With --http the live bedside page is served (see
    ecgedge review for a recorded session). With --workers N the boards are split
    among N processes; one that dies is reported (worker-down on its boards) and
    restarted, the others carry on. Exit status: 0 after --duration or a signal,
    1 when the bundle or a port cannot be used at start.
    """
    from ecgedge.firmware_bridge.hub import Hub
    from ecgedge.firmware_bridge.source import PortError
    from ecgedge.firmware_bridge.workers import WorkerPool
    from ecgedge.runtime import BundleError, load_scorer

    out = sys.stderr if options["jsonl"] == "-" else sys.stdout  # --jsonl -: stdout is JSON only
    if http and workers > 1:
        raise click.BadParameter(
            "the page is served by a one-process bridge (--workers 1) for now", param_hint="--http"
        )
    address = http_address(http, http_token) if http else None
    try:
        scorer = load_scorer(bundle_dir, backend=backend, precision=precision, threads=threads)
    except (BundleError, ImportError, ValueError) as exc:
        raise click.ClickException(f"cannot load bundle {bundle_dir}: {exc}") from None
    settings = _settings(options)
    try:
        boards = _boards(ports, options, settings.alarm_limits)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if workers > 1:
        scorer_options = {"backend": backend, "precision": precision, "threads": threads}
        hub: Hub | WorkerPool = WorkerPool(bundle_dir, settings, workers=workers, scorer_options=scorer_options)
    else:
        hub = Hub(scorer, settings)
    hub.on_event = _print_event
    hub.on_beats = _print_beats(all_beats, hub.fs_of, out)
    view = _serve_page(hub, address, http_token) if address else None
    try:
        for board in boards:
            hub.add_board(board)
            if view is not None:
                view.feed.add_board(board.name)
        hub.sinks.extend(_sinks(hub.fs_of, options))
    except (ValueError, OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    served = f" in {min(workers, len(ports))} worker processes" if workers > 1 else ""
    click.echo(f"bridge: {len(ports)} board(s){served}, {scorer!r}", err=True)
    try:
        summary = hub.run(duration=duration, stop=_stop_on_signals())
    except PortError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if view is not None:
            view.close()
            click.echo(f"view: {view.feed.dropped} display frames dropped for slow viewers", err=True)
    _print_summary(summary, out)


def _settings(options: dict) -> BridgeSettings:
    """The bridge's settings from its options: adapt by default, calibrate on request, 0 s: the bundle's threshold."""
    adapt_s, calibrate = options["adapt_s"], options["calibrate"]
    if calibrate and adapt_s:
        raise click.BadParameter(
            "a stream is either adapted (--adapt) or calibrated (--calibrate), not both", param_hint="--adapt"
        )
    if calibrate:
        judging = Judging.calibrate(calibrate)
    elif adapt_s == 0:
        judging = Judging.fixed()
    else:
        judging = Judging.adapt(DEFAULT_ADAPT_S if adapt_s is None else adapt_s)
    limits = ("vt_beats", "vt_bpm", "brady_bpm", "brady_beats", "tachy_bpm", "tachy_beats", "pause_s", "asystole_s")
    watch = ("no_beats_s", "confirm_leads", "no_data_s", "max_lag_s", "open_timeout")
    try:
        return BridgeSettings(
            judging=judging,
            alarm_limits=AlarmLimits(**{name: options[name] for name in limits}),
            **{name: options[name] for name in watch},
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--brady-bpm / --tachy-bpm") from None


def _boards(ports: tuple[str, ...], options: dict, limits: AlarmLimits) -> list[BoardSpec]:
    """Each ``--port [BED=]URL`` as a board (unnamed ones of several are board0, board1, ...), its ``--bed-limit``."""
    fields = ("fmt", "fs", "gain", "baseline", "lead", "polarity")
    named = []
    for i, port in enumerate(ports):
        label, url = bed_and_url(port)
        named.append((label or (url if len(ports) == 1 else f"board{i}"), url))
    own = bed_limits(options["bed_limits"], [name for name, _ in named], limits)
    return [
        BoardSpec(url, name, alarm_limits=own.get(name), **{field: options[field] for field in fields})
        for name, url in named
    ]


def bed_limits(given: tuple[str, ...], beds: list[str], limits: AlarmLimits) -> dict[str, AlarmLimits]:
    """Each ``BED:LIMIT=VALUE`` applied over ``limits``: bed -> its own limits (beds without any left out).

    Raises
    ------
    click.BadParameter
        A bed that is not one of ``beds``, a limit that is not one of :data:`BED_LIMITS`, a value that
        is not a number of the limit's kind, or limits that cannot stand together (brady over tachy).
    """
    changes: dict[str, dict] = {}
    for item in given:
        bed, _, setting = item.partition(":")
        name, _, value = setting.partition("=")
        if bed not in beds:
            raise click.BadParameter(
                f"{item!r}: no board named {bed!r}; the boards: {', '.join(beds)}", param_hint="--bed-limit"
            )
        if name not in BED_LIMITS:
            raise click.BadParameter(
                f"{item!r}: {name!r} is not one of {', '.join(BED_LIMITS)}", param_hint="--bed-limit"
            )
        kind = type(getattr(limits, BED_LIMITS[name]))
        try:
            changes.setdefault(bed, {})[BED_LIMITS[name]] = kind(value)
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: {value!r} is not {'a whole number' if kind is int else 'a number'}",
                param_hint="--bed-limit",
            ) from None
    own = {}
    for bed, fields in changes.items():
        try:
            own[bed] = replace(limits, **fields)
        except ValueError as exc:
            raise click.BadParameter(f"{bed}: {exc}", param_hint="--bed-limit") from None
    return own


def _sinks(fs_of, options: dict) -> list:
    """The ``--jsonl`` and ``--db`` sinks, with their rotation and retention."""
    from ecgedge.firmware_bridge.sinks import JsonlSink, SqliteSink

    sinks: list = []
    if jsonl := options["jsonl"]:
        target = sys.stdout if jsonl == "-" else jsonl
        sinks.append(
            JsonlSink(target, max_bytes=round(options["jsonl_max_mb"] * 2**20), backups=options["jsonl_backups"])
        )
    if db := options["db"]:
        try:
            sinks.append(
                SqliteSink(
                    db,
                    fs_of,
                    synchronous="FULL" if options["durable"] else "NORMAL",
                    max_strips=options["keep_strips"],
                    keep_beats_s=options["keep_hours"] * 3600 or None,
                    keep_events_s=options["keep_events_days"] * 86400 or None,
                )
            )
        except sqlite3.Error as exc:
            raise click.BadParameter(f"{db}: not a usable SQLite database ({exc})", param_hint="--db") from None
    return sinks


def _print_summary(summary: dict, out) -> None:
    """The end-of-run totals: one line for people, one JSON line for programs."""
    lat = summary["latency_ms"]

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} ms"

    counts = (
        *("beats", "flagged", "learning_beats", "frames", "frames_dropped", "frames_lost", "garbage_bytes"),
        *("shed_samples", "shed_beats", "internal_errors"),
    )
    names = {"learning_beats": "learning", "frames_dropped": "dropped", "frames_lost": "lost"}
    totals = " ".join(f"{names.get(key, key)}={summary[key]}" for key in counts)
    events = " ".join(f"{k}={v}" for k, v in summary["events"].items()) or "none"
    click.echo(f"summary: {totals} latency p50={ms(lat['p50'])} p99={ms(lat['p99'])}", file=out)
    click.echo(f"summary-events: {events}", file=out)
    click.echo("summary-json: " + json.dumps(summary), file=out)


def _serve_page(hub, address: tuple[str, int], token: str | None):
    """Start the page's server and feed it from the hub's callbacks."""
    from ecgedge.view.feed import LiveFeed

    feed = LiveFeed()
    printer, echo_event = hub.on_beats, hub.on_event

    def on_beats(scored) -> None:
        printer(scored)
        feed.on_beats(scored)

    def on_event(event) -> None:
        echo_event(event)
        feed.on_event(event)

    hub.on_beats, hub.on_event = on_beats, on_event
    hub.on_signal = feed.on_signal
    return serve_page(feed, address, token, "bridge")


COMMANDS = (simulate, bridge, demo)
