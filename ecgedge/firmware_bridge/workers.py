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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import cast

from ecgedge.analysis.scored import ScoredBeat
from ecgedge.firmware_bridge.events import Condition, ConditionTracker, Event
from ecgedge.firmware_bridge.hub import Hub
from ecgedge.firmware_bridge.settings import BoardSpec, BridgeSettings, check_unique
from ecgedge.firmware_bridge.source import PortError
from ecgedge.firmware_bridge.writer import Commit, CommitWriter, Kept, Sink, WritesCommits, kept_of

_CONTEXT = mp.get_context("spawn")
_REPORT_EVERY_S = 2.0  # how often a busy worker sends its counters
_MAX_RESTART_DELAY_S = 30.0
_YOUNG_S = 60.0  # a worker that dies younger than this is restarted later each time
_STOP_GRACE_S = 15.0  # how long stopping workers may take to commit their last beats


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker process serves.

    Attributes
    ----------
    bundle : str
        Deployment bundle directory; each worker loads its own scorer.
    scorer_options : dict
        Keyword arguments of :func:`ecgedge.runtime.load_scorer` (``backend``, ``precision``, ``threads``).
    settings : BridgeSettings
        The bridge's settings, for the worker's :class:`~ecgedge.firmware_bridge.hub.Hub`.
    boards : list of BoardSpec
    kept : Kept
        What the parent's sinks keep of each stream, for the worker's Hub to resume from.
    """

    bundle: str
    scorer_options: dict
    settings: BridgeSettings
    boards: list[BoardSpec]
    kept: Kept


class _PipeWriter(CommitWriter):
    """A worker Hub's writer: each commit goes down the pipe to the parent, which writes the sinks.

    It also sends the Hub's counters (:meth:`Hub.summary`) every ``_REPORT_EVERY_S`` seconds of
    commits and on :meth:`report`. Patient memories go with the commits (the parent keeps them);
    alarm strips are not made in a worker. It counts nothing: the parent counts what it commits.
    """

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.hub: Hub | None = None  # whose sample rates and counters it sends
        self._conn = conn
        self._reported_at = time.monotonic()

    def write(self, commit: Commit) -> None:
        if commit and self.hub is not None:
            self._conn.send(("batch", commit.parts, {stream: self.hub.fs_of(stream) for stream in commit.streams()}))
            if time.monotonic() - self._reported_at >= _REPORT_EVERY_S:
                self.report()

    @property
    def keeps_strips(self) -> bool:
        return False

    @property
    def keeps_patients(self) -> bool:
        return True

    def counters(self) -> dict:
        return {}

    def report(self) -> None:
        """Send the Hub's counters now."""
        self._reported_at = time.monotonic()
        self._conn.send(("counters", self.hub.summary() if self.hub is not None else {}))


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

    writer = _PipeWriter(conn)
    hub = writer.hub = Hub(load_scorer(plan.bundle, **plan.scorer_options), plan.settings, writer=writer)
    hub.kept = plan.kept
    for board in plan.boards:
        hub.add_board(board)
    try:
        hub.run(stop=stop)
        writer.report()
    except PortError as exc:
        conn.send(("failed", str(exc)))
    except BrokenPipeError:
        pass  # the parent is gone: nobody left to tell


def _stop_with_parent(stop: threading.Event) -> None:
    parent = mp.parent_process()
    if parent is not None:
        wait([parent.sentinel])
    stop.set()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with status {exitcode}"


class _Worker:
    """The parent's side of one group of boards: its plan, its current process and pipe, its history."""

    def __init__(self, index: int, boards: list[BoardSpec], delay: float) -> None:
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
        return [board.name for board in self.boards]

    @property
    def starting(self) -> bool:
        return self.conn is not None and not self.up and self.failure is None


class WorkerPool(WritesCommits):
    """Serve the bridge's boards with worker processes, one per group of boards; write every sink here.

    Same use as :class:`~ecgedge.firmware_bridge.hub.Hub`: :meth:`add_board`, ``sinks``,
    ``on_beats``, ``on_event``, :meth:`run`, :meth:`fs_of`, :meth:`summary`.

    Parameters
    ----------
    bundle : str or Path
        Deployment bundle directory, loaded by each worker (load it once here first, so a bad
        bundle is refused at start).
    settings : BridgeSettings, optional
        Every worker Hub's settings; default: their defaults.
    workers : int
        Worker processes; at most one per board is started.
    scorer_options : dict, optional
        Keyword arguments of :func:`ecgedge.runtime.load_scorer` for the workers.
    sinks, on_beats, on_event
        As :class:`Hub`'s; written and called in this process.
    restart_delay : float, default=1.0
        Seconds before a dead worker is restarted (see the module's docstring).
    start_timeout : float, default=120.0
        Seconds :meth:`run` waits for every worker to start before its clock starts anyway.
    """

    def __init__(
        self,
        bundle: str | Path,
        settings: BridgeSettings | None = None,
        *,
        workers: int,
        scorer_options: dict | None = None,
        sinks: Sequence[Sink] = (),
        on_beats: Callable[[list[ScoredBeat]], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        restart_delay: float = 1.0,
        start_timeout: float = 120.0,
    ) -> None:
        if workers < 1 or not restart_delay > 0:
            raise ValueError(f"need workers >= 1 and restart_delay > 0, got {workers}, {restart_delay}")
        self.bundle = str(bundle)
        self.settings = settings or BridgeSettings()
        self.workers = workers
        self.scorer_options = dict(scorer_options or {})
        self.writer = CommitWriter(sinks, on_beats, on_event)
        self.restart_delay = restart_delay
        self.start_timeout = start_timeout
        self.slots: list[_Worker] = []
        self.conditions = ConditionTracker()
        self._boards: list[BoardSpec] = []
        self._fs: dict[str, float] = {}
        self._serving = False  # the start is over: a worker that fails now is restarted
        self._stopping = False

    def add_board(self, board: BoardSpec | str, **options) -> None:
        """Add a board: a :class:`BoardSpec`, or its URL and the spec's other fields as keywords.

        Raises
        ------
        ValueError
            As :meth:`Hub.add_board`.
        """
        spec = board if isinstance(board, BoardSpec) else BoardSpec(board, **options)
        check_unique(self._boards, spec)
        if spec.fs is not None:
            self._fs[spec.name] = spec.fs
        self._boards.append(spec)

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
            self.writer.close()
        return self.summary()

    def _start(self, worker: _Worker) -> None:
        receive, send = _CONTEXT.Pipe(duplex=False)
        kept = kept_of(self.writer.sinks, worker.streams, self.settings.judging)
        plan = WorkerPlan(self.bundle, self.scorer_options, self.settings, worker.boards, kept)
        worker.process = _CONTEXT.Process(
            target=serve_group, args=(plan, send), name=f"ecgedge bridge worker {worker.index}", daemon=True
        )
        worker.process.start()
        send.close()  # the worker holds the only writing end: its death ends the pipe
        worker.conn, worker.up, worker.failure, worker.restart_at = receive, False, None, None
        worker.started_at = time.monotonic()
        worker.starts += 1

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
        for ready in wait(list(live), timeout):
            conn = cast(Connection, ready)
            worker = live[conn]
            try:
                kind, *body = conn.recv()
            except (EOFError, OSError):
                self._ended(worker)
                continue
            if kind == "batch":
                parts, fs = body
                self._fs.update(fs)
                self.writer.write(Commit(parts))
                if not worker.up:
                    worker.up = True
                    self._worker_condition(worker, False)
            elif kind == "counters":
                worker.counters = body[0]
            else:
                worker.failure = body[0]

    def _ended(self, worker: _Worker) -> None:
        """A worker's pipe ended: record how, and unless the pool is stopping, report it and plan its restart."""
        process, conn = worker.process, worker.conn
        assert process is not None and conn is not None, "a worker's pipe ends once per start"
        conn.close()
        worker.conn = None
        process.join(5.0)
        if process.is_alive():  # closed its pipe but lives on: it cannot serve
            process.kill()
            process.join()
        worker.exit_codes.append(process.exitcode)
        worker.retired.append(worker.counters)
        worker.counters, worker.up = {}, False
        if self._stopping or (worker.failure is not None and not self._serving):
            return  # a normal end, or a start that failed (run reports it)
        if time.monotonic() - worker.started_at >= _YOUNG_S:
            worker.delay = self.restart_delay
        worker.restart_at = time.monotonic() + worker.delay
        why = worker.failure or _death(process.exitcode)
        self._worker_condition(
            worker, True, f"worker {worker.index} (pid {process.pid}) {why}; restarting in {worker.delay:g} s"
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
            self.writer.write(Commit([("events", events)]))

    def _stop_workers(self) -> None:
        """SIGTERM every worker, write what they commit on the way out, kill those that outlast the grace."""
        self._stopping = True
        for worker in self.slots:
            worker.restart_at = None
            if worker.conn is not None and worker.process is not None:
                worker.process.terminate()
        give_up = time.monotonic() + _STOP_GRACE_S
        while any(w.conn is not None for w in self.slots) and time.monotonic() < give_up:
            self._serve(0.1)
        for worker in self.slots:
            if worker.conn is not None and worker.process is not None:
                worker.process.kill()
                self._ended(worker)

    def close(self) -> None:
        """Stop the workers and close the sinks, as the end of :meth:`run` does; safe to repeat."""
        self._stop_workers()
        self.writer.close()

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
            **self.writer.counters(),
            "filter_rows": filter_rows,
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
