"""Many boards, several processes: a worker process per group of boards, one parent that owns the sinks.

One :class:`~ecgedge.firmware_bridge.hub.Hub` does a board's heavy work
(filtering, R-peak detection, cutting, scoring, judging) in one Python
thread, so it uses about one core. A :class:`WorkerPool` splits the boards
into groups (board ``i`` goes to worker ``i % workers``) and serves each
group with a Hub of its own in a worker process, started with
multiprocessing's ``spawn`` context (a fork of a process that holds threads
and an ONNX Runtime session is not safe). A worker's only sink sends what
each of its commits holds, in order, down the worker's own pipe; the parent
writes that to the real sinks (stdout, JSON lines, SQLite), commits them,
and only then reports it (``on_beats``, ``on_event``). So every output is
one log written by one process, in each stream's order, and ``--jsonl -``
keeps stdout pure JSON (a worker's stdout is its stderr).

Containment: whatever a Hub contains per board, each worker contains. A
worker that dies (killed, crashed) shows as the end of its pipe, after all
it committed has been written; the parent raises ``worker-down`` on each of
its boards, restarts it after ``restart_delay`` seconds (doubling while it
dies within a minute of starting, up to 30 s) and clears the condition
(``worker-up``) when the new worker commits its first batch (its boards'
``link-up``); the other workers never stop. The new worker resumes each
stream's learnt patient from what the parent's sink keeps (SQLite: the
learning scores, the patient memories a worker's Hub saves), as a
restarted bridge does. What the dead worker had read but
not committed is lost with it; what waited in its ports meanwhile is read
by the new one (and shed if too late, by the Hub's overload policy).

Latency is measured at the parent's commit, from each beat's ``arrival``
(:func:`time.perf_counter`, the system-wide monotonic clock, so it compares
across processes): it includes the trip through the pipe.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from ecgedge._closing import Closing
from ecgedge.firmware_bridge.events import Condition, ConditionTracker, Event
from ecgedge.firmware_bridge.hub import Hub
from ecgedge.firmware_bridge.latency import LatencyHistogram
from ecgedge.firmware_bridge.sinks import ScoredBeat
from ecgedge.firmware_bridge.source import PortError

_CONTEXT = mp.get_context("spawn")
_REPORT_EVERY_S = 2.0  # how often a busy worker sends its counters
_MAX_RESTART_DELAY_S = 30.0
_YOUNG_S = 60.0  # a worker that dies younger than this is restarted later each time
_STOP_GRACE_S = 15.0  # how long stopping workers may take to commit their last beats
#: What one commit holds, in order: ("beats", [ScoredBeat]), ("events", [Event]) or ("patients", [(stream, state)]).
Items = list[tuple[str, list]]
#: The sink methods whose stored answers a worker's Hub resumes its streams from (see WorkerPlan.kept).
_KEPT = ("learning_scores", "patient_state")


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker process serves.

    Attributes
    ----------
    bundle : str
        Deployment bundle directory; each worker loads its own scorer.
    scorer_options : dict
        Keyword arguments of :func:`ecgedge.runtime.load_scorer` (``backend``, ``precision``, ``threads``).
    hub_options : dict
        Keyword arguments of :class:`~ecgedge.firmware_bridge.hub.Hub` (no sinks, no callbacks).
    boards : list of (str, dict)
        Each board's URL and keyword arguments of :meth:`Hub.add_board`.
    kept : dict
        What the parent's sinks keep of each stream, for the worker's Hub to
        resume from: ``{"learning_scores": {stream: scores}, "patient_state": {stream: state}}``.
    """

    bundle: str
    scorer_options: dict
    hub_options: dict
    boards: list[tuple[str, dict]]
    kept: dict[str, dict]


class _Outbox(Closing):
    """A worker's only sink: each commit sends what was written since, in order, to the parent.

    It also sends the Hub's counters (:meth:`Hub.summary`) every
    ``_REPORT_EVERY_S`` seconds of commits and on :meth:`report`, and hands
    the Hub what the parent's sinks keep of each stream (``kept``, see
    :class:`WorkerPlan`), as an SQLite sink would.
    """

    def __init__(
        self, conn: Connection, fs_of: Callable[[str], float], counters: Callable[[], dict], kept: dict[str, dict]
    ) -> None:
        self._conn = conn
        self._fs_of = fs_of
        self._counters = counters
        self._kept = kept
        self._items: Items = []
        self._reported_at = time.monotonic()

    def learning_scores(self, stream: str, limit: int) -> list[float]:
        """The stored learning scores of ``stream`` (at most ``limit``), oldest first."""
        return self._kept["learning_scores"].get(stream, [])[:limit]

    def patient_state(self, stream: str) -> dict | None:
        """The patient memory last saved for ``stream``, or None."""
        return self._kept["patient_state"].get(stream)

    def save_patient(self, stream: str, state: dict) -> None:
        self._items.append(("patients", [(stream, state)]))

    def write(self, beats: list[ScoredBeat]) -> None:
        self._items.append(("beats", beats))

    def write_events(self, events: list[Event]) -> None:
        self._items.append(("events", events))

    def commit(self) -> None:
        if self._items:
            streams = {s.beat.stream for kind, batch in self._items if kind == "beats" for s in batch}
            self._conn.send(("batch", self._items, {stream: self._fs_of(stream) for stream in streams}))
            self._items = []
        if time.monotonic() - self._reported_at >= _REPORT_EVERY_S:
            self.report()

    def report(self) -> None:
        """Send the Hub's counters now."""
        self._reported_at = time.monotonic()
        self._conn.send(("counters", self._counters()))


def serve_group(plan: WorkerPlan, conn: Connection) -> None:
    """A worker process: serve ``plan``'s boards with one Hub until SIGTERM or until the parent is gone.

    SIGINT is ignored (a terminal's Ctrl-C reaches the whole process group;
    the parent stops its workers). A port that does not open at start is
    reported as ``("failed", message)``; the Hub's counters are the last message.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    os.dup2(2, 1)  # stdout is the parent's
    threading.Thread(target=_stop_with_parent, args=(stop,), name="parent watch", daemon=True).start()
    from ecgedge.runtime import load_scorer

    hub = Hub(load_scorer(plan.bundle, **plan.scorer_options), **plan.hub_options)
    outbox = _Outbox(conn, hub.fs_of, hub.summary, plan.kept)
    hub.sinks.append(outbox)
    for url, options in plan.boards:
        hub.add_board(url, **options)
    try:
        hub.run(stop=stop)
        outbox.report()
    except PortError as exc:
        conn.send(("failed", str(exc)))
    except BrokenPipeError:
        pass  # the parent is gone: nobody left to tell


def _stop_with_parent(stop: threading.Event) -> None:
    wait([mp.parent_process().sentinel])
    stop.set()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with status {exitcode}"


class _Worker:
    """The parent's side of one group of boards: its plan, its current process and pipe, its history."""

    def __init__(self, index: int, boards: list[tuple[str, dict]], delay: float) -> None:
        self.index = index
        self.boards = boards
        self.delay = delay
        self.process: mp.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.started_at = 0.0
        self.starts = 0
        self.up = False  # the current process committed its first batch
        self.failure: str | None = None  # why the current process could not start serving
        self.restart_at: float | None = None
        self.counters: dict = {}  # the current process's latest
        self.retired: list[dict] = []  # the last counters of each process that ended
        self.exit_codes: list[int | None] = []

    @property
    def streams(self) -> list[str]:
        return [options["name"] for _, options in self.boards]

    @property
    def starting(self) -> bool:
        return self.conn is not None and not self.up and self.failure is None


class WorkerPool(Closing):
    """Serve the bridge's boards with worker processes, one per group of boards; write every sink here.

    Same use as :class:`~ecgedge.firmware_bridge.hub.Hub`: :meth:`add_board`,
    ``sinks``, ``on_beats``, ``on_event``, :meth:`run`, :meth:`fs_of`,
    :meth:`summary`.

    Parameters
    ----------
    bundle : str or Path
        Deployment bundle directory, loaded by each worker.
    scorer : object
        The bundle's scorer loaded here (so a bad bundle is refused once, at
        start); its ``beat_format`` checks each board as :meth:`Hub.add_board` does.
    workers : int
        Worker processes; at most one per board is started.
    scorer_options : dict, optional
        Keyword arguments of :func:`ecgedge.runtime.load_scorer` for the workers.
    sinks, calibration_beats, on_beats, on_event
        As :class:`Hub`'s; called and written in this process.
    restart_delay : float, default=1.0
        Seconds before a dead worker is restarted (see the module's docstring).
    start_timeout : float, default=120.0
        Seconds :meth:`run` waits for every worker to start before its clock starts anyway.
    **hub_options
        The rest of :class:`Hub`'s keyword arguments (``no_beats_s``,
        ``max_lag_s``, ``open_timeout``, ...), for every worker's Hub.
    """

    def __init__(
        self,
        bundle: str | Path,
        scorer,
        *,
        workers: int,
        scorer_options: dict | None = None,
        sinks=(),
        calibration_beats: int | None = None,
        on_beats: Callable[[list[ScoredBeat]], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        restart_delay: float = 1.0,
        start_timeout: float = 120.0,
        **hub_options,
    ) -> None:
        if workers < 1 or not restart_delay > 0:
            raise ValueError(f"need workers >= 1 and restart_delay > 0, got {workers}, {restart_delay}")
        self.bundle = str(bundle)
        self.workers = workers
        self.scorer_options = dict(scorer_options or {})
        self.hub_options = {**hub_options, "calibration_beats": calibration_beats}
        self.sinks = list(sinks)
        self.calibration_beats = calibration_beats
        self.on_beats = on_beats
        self.on_event = on_event
        self.restart_delay = restart_delay
        self.start_timeout = start_timeout
        self.latencies = LatencyHistogram()
        self.beats = 0
        self.flagged = 0
        self.learning_beats = 0
        self.warmup_beats = 0
        self.event_counts: dict[str, int] = {}
        self.slots: list[_Worker] = []
        self.conditions = ConditionTracker()
        self._check = Hub(scorer, **self.hub_options)  # checks boards and options as the workers' Hubs will
        self._boards: list[tuple[str, dict]] = []
        self._fs: dict[str, float] = {}
        self._serving = False  # the start is over: a worker that fails now is restarted
        self._stopping = False

    def add_board(self, url: str, **options) -> None:
        """Add a board: the arguments of :meth:`Hub.add_board`, checked here as it checks them.

        Raises
        ------
        ValueError
            As :meth:`Hub.add_board`.
        """
        options["name"] = options.get("name") or url
        self._check.add_board(url, **options)
        if options.get("fs") is not None:
            self._fs[options["name"]] = options["fs"]
        self._boards.append((url, options))

    def fs_of(self, stream: str) -> float:
        """Sample rate of a stream (for sinks), as its worker last reported it."""
        return self._fs[stream]

    def run(self, duration: float | None = None, stop: threading.Event | None = None) -> dict:
        """Start the workers, then serve until ``duration`` seconds pass or ``stop`` is set; return :meth:`summary`.

        The clock starts once every worker serves its boards (or has died trying).

        Raises
        ------
        PortError
            When a port cannot be opened at start, naming every such port;
            the workers are stopped and the sinks closed.
        """
        if not self._boards:
            raise ValueError("no boards: add_board() first")
        stop = stop or threading.Event()
        groups = min(self.workers, len(self._boards))
        self.slots = [_Worker(i, self._boards[i::groups], self.restart_delay) for i in range(groups)]
        self._serving = self._stopping = False
        try:
            for worker in self.slots:
                self._start(worker)
            self._await_start(stop)
            self._serving = True
            deadline = None if duration is None else time.perf_counter() + duration
            while not stop.is_set() and (deadline is None or time.perf_counter() < deadline):
                self._serve(0.1)
                self._restart_due()
        finally:
            self._stop_workers()
            for sink in self.sinks:
                sink.close()
        return self.summary()

    def _start(self, worker: _Worker) -> None:
        receive, send = _CONTEXT.Pipe(duplex=False)
        plan = WorkerPlan(self.bundle, self.scorer_options, self.hub_options, worker.boards, self._kept(worker.streams))
        worker.process = _CONTEXT.Process(
            target=serve_group, args=(plan, send), name=f"ecgedge bridge worker {worker.index}", daemon=True
        )
        worker.process.start()
        send.close()  # the worker holds the only writing end: its death ends the pipe
        worker.conn, worker.up, worker.failure, worker.restart_at = receive, False, None, None
        worker.started_at = time.monotonic()
        worker.starts += 1

    def _kept(self, streams: list[str]) -> dict[str, dict]:
        """What the first sink that keeps each kind holds of ``streams`` (see :class:`WorkerPlan`)."""
        kept: dict[str, dict] = {kind: {} for kind in _KEPT}
        learning = next((sink for sink in self.sinks if hasattr(sink, "learning_scores")), None)
        if learning is not None and self.calibration_beats:
            kept["learning_scores"] = {
                stream: learning.learning_scores(stream, self.calibration_beats) for stream in streams
            }
        patients = next((sink for sink in self.sinks if hasattr(sink, "patient_state")), None)
        if patients is not None:
            states = {stream: patients.patient_state(stream) for stream in streams}
            kept["patient_state"] = {stream: state for stream, state in states.items() if state is not None}
        return kept

    def _await_start(self, stop: threading.Event) -> None:
        give_up = time.monotonic() + self.start_timeout
        while any(w.starting for w in self.slots) and not stop.is_set() and time.monotonic() < give_up:
            self._serve(0.1)
        failures = [w.failure for w in self.slots if w.failure is not None]
        if failures:
            raise PortError("; ".join(sorted(failures)))

    def _serve(self, timeout: float) -> None:
        """Take one message from each worker that has one, waiting up to ``timeout`` seconds for any."""
        live = {w.conn: w for w in self.slots if w.conn is not None}
        if not live:
            time.sleep(timeout)
            return
        for conn in wait(list(live), timeout):
            worker = live[conn]
            try:
                kind, *body = conn.recv()
            except (EOFError, OSError):
                self._ended(worker)
                continue
            if kind == "batch":
                items, fs = body
                self._fs.update(fs)
                self._commit(items)
                if not worker.up:
                    worker.up = True
                    self._worker_condition(worker, False)
            elif kind == "counters":
                worker.counters = body[0]
            else:
                worker.failure = body[0]

    def _ended(self, worker: _Worker) -> None:
        """A worker's pipe ended: record how, and unless the pool is stopping, report it and plan its restart."""
        worker.conn.close()
        worker.conn = None
        worker.process.join(5.0)
        if worker.process.is_alive():  # closed its pipe but lives on: it cannot serve
            worker.process.kill()
            worker.process.join()
        worker.exit_codes.append(worker.process.exitcode)
        worker.retired.append(worker.counters)
        worker.counters, worker.up = {}, False
        if self._stopping or (worker.failure is not None and not self._serving):
            return  # a normal end, or a start that failed (run reports it)
        if time.monotonic() - worker.started_at >= _YOUNG_S:
            worker.delay = self.restart_delay
        worker.restart_at = time.monotonic() + worker.delay
        why = worker.failure or _death(worker.process.exitcode)
        self._worker_condition(
            worker, True, f"worker {worker.index} (pid {worker.process.pid}) {why}; restarting in {worker.delay:g} s"
        )
        worker.delay = min(2 * worker.delay, _MAX_RESTART_DELAY_S)

    def _restart_due(self) -> None:
        now = time.monotonic()
        for worker in self.slots:
            if worker.restart_at is not None and now >= worker.restart_at:
                self._start(worker)

    def _worker_condition(self, worker: _Worker, down: bool, detail: str = "") -> None:
        events = [
            self.conditions.set(stream, Condition.WORKER_DOWN, down, time.time(), detail) for stream in worker.streams
        ]
        events = [e for e in events if e is not None]
        if events:
            self._commit([("events", events)])

    def _commit(self, items: Items) -> None:
        """Write one worker commit (or the pool's own events) to every sink, commit, then report it."""
        for kind, batch in items:
            for sink in self.sinks:
                if kind == "beats":
                    sink.write(batch)
                elif kind == "events":
                    sink.write_events(batch)
                elif hasattr(sink, "save_patient"):
                    for stream, state in batch:
                        sink.save_patient(stream, state)
        for sink in self.sinks:
            sink.commit()
        committed = time.perf_counter()
        for kind, batch in items:
            if kind == "events":
                for event in batch:
                    self.event_counts[event.name] = self.event_counts.get(event.name, 0) + 1
                    if self.on_event is not None:
                        self.on_event(event)
            if kind != "beats":
                continue
            self.latencies.add(committed - s.beat.arrival for s in batch if not s.beat.warmup)
            self.beats += len(batch)
            self.flagged += sum(s.anomaly for s in batch)
            self.learning_beats += sum(s.learning for s in batch)
            self.warmup_beats += sum(s.beat.warmup for s in batch)
            if self.on_beats is not None:
                self.on_beats(batch)

    def _stop_workers(self) -> None:
        """SIGTERM every worker, write what they commit on the way out, kill those that outlast the grace."""
        self._stopping = True
        for worker in self.slots:
            worker.restart_at = None
            if worker.conn is not None:
                worker.process.terminate()
        give_up = time.monotonic() + _STOP_GRACE_S
        while any(w.conn is not None for w in self.slots) and time.monotonic() < give_up:
            self._serve(0.1)
        for worker in self.slots:
            if worker.conn is not None:
                worker.process.kill()
                self._ended(worker)

    def close(self) -> None:
        """Stop the workers and close the sinks, as the end of :meth:`run` does; safe to repeat."""
        self._stop_workers()
        for sink in self.sinks:
            sink.close()

    def summary(self) -> dict:
        """Totals so far, as :meth:`Hub.summary`, plus ``workers``: each one's boards, pid, restarts and exit codes.

        Beats, flags, events and latency are counted here as they are
        committed; the rest adds up each worker process's last report (sent
        every few seconds of commits and at its end): numbers add, per-stream
        tables and lists join (the latest report wins), the filter rows are
        the live workers'.
        """
        merged: dict = {}
        for report in (r for w in self.slots for r in (*w.retired, w.counters)):
            for key, value in report.items():
                if isinstance(value, dict):
                    merged.setdefault(key, {}).update(value)
                elif isinstance(value, list):
                    merged[key] = sorted({*merged.get(key, []), *value})
                elif isinstance(value, (int, float)):
                    merged[key] = merged.get(key, 0) + value
                else:
                    merged[key] = value
        filter_rows: dict[float, int] = {}
        for worker in self.slots:
            for fs, rows in worker.counters.get("filter_rows", {}).items():
                filter_rows[fs] = filter_rows.get(fs, 0) + rows
        return {
            **merged,
            "boards": len(self._boards),
            "beats": self.beats,
            "flagged": self.flagged,
            "learning_beats": self.learning_beats,
            "warmup_beats": self.warmup_beats,
            "events": dict(sorted(self.event_counts.items())),
            "filter_rows": filter_rows,
            "latency_ms": self.latencies.summary_ms(),
            "workers": [
                {
                    "boards": w.streams,
                    "pid": w.process.pid if w.process else None,
                    "restarts": max(0, w.starts - 1),
                    "exit_codes": w.exit_codes,
                }
                for w in self.slots
            ],
        }
