"""Many boards, one process: ports -> one queue -> the core -> sinks, with a watchdog.

Each board has a :class:`~ecgedge.firmware_bridge.links.BoardLink`: a reconnecting
:class:`~ecgedge.firmware_bridge.source.SerialSource` whose reader (one poller thread for all
ports with a file descriptor) decodes frames (or lines) and puts typed messages on the hub's
bounded queue. The :class:`Hub` loop, in one thread, takes what is queued and hands it to the
:class:`~ecgedge.firmware_bridge.core.BridgeCore`, which filters, cuts, scores and judges the
beats (its docstring says how one board's failure stays its own), and the
:class:`~ecgedge.firmware_bridge.writer.CommitWriter` writes and commits the sinks and only then
reports the beats. The hub itself keeps the queue, the ports and the wall-clock watchdog.

Events (:mod:`~ecgedge.firmware_bridge.events`): link down / up, board error, no data (connected,
but no valid frame for ``no_data_s``), lead-off (the board says so), no signal (flat line, ADC
rails: see :mod:`~ecgedge.analysis.signal_quality`), no beats (no R peak for ``no_beats_s`` of
signal), overload, a noisy stretch (beats there are not judged), rhythm changes and the
arrhythmia alarms (:class:`~ecgedge.analysis.judge.BeatJudge`). Each goes to every sink, to
``on_event`` and into the summary's counts.

Overload policy. The queue holds at most ``max_queue`` messages; a full queue blocks the reader,
so the backlog waits in the kernel (bounded by each port's buffer: boards then overrun their
ports, which shows as lost frames), and memory stays bounded. Blocks that waited too long are
shed by the core (see :mod:`~ecgedge.firmware_bridge.core`). Latency is measured per beat from
when the last sample its window needs would have been read had nothing waited (the stream's
sample clock, see :mod:`~ecgedge.firmware_bridge.pipeline`, so time in the kernel counts) to the
commit; beats of a stream's first seconds, which wait for the R-peak detector to learn its
levels, are counted apart (``warmup_beats``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from ecgedge.analysis.scored import ScoredBeat
from ecgedge.firmware_bridge.core import BridgeCore
from ecgedge.firmware_bridge.events import Condition, Event
from ecgedge.firmware_bridge.links import BoardLink, Message
from ecgedge.firmware_bridge.settings import BoardSpec, BridgeSettings
from ecgedge.firmware_bridge.source import PortError
from ecgedge.firmware_bridge.writer import CommitWriter, Kept, Sink, WritesCommits, kept_of

_WATCH_EVERY_S = 0.5


class Hub(WritesCommits):
    """Run the bridge for any number of boards.

    Parameters
    ----------
    scorer : object
        Anything with ``score_samples(beats (n, L)) -> (n,)`` (higher = more normal), an
        ``offset_`` and a ``beat_format``, such as :func:`ecgedge.runtime.load_scorer`'s scorers.
    settings : BridgeSettings, optional
        Every setting (:class:`~ecgedge.firmware_bridge.settings.BridgeSettings`); default: its
        defaults. With ``Judging.calibrate`` or ``Judging.adapt`` a sink that keeps patients
        (:class:`~ecgedge.firmware_bridge.sinks.SqliteSink`) lets a restarted bridge resume them.
    sinks : sequence of Sink, default=()
        Where beats, events, strips and patient memories are written (:attr:`writer`'s sinks).
    on_beats : callable, optional
        ``on_beats(list[ScoredBeat])``, called after each micro-batch is committed.
    on_event : callable, optional
        ``on_event(Event)``, called for each event after it is committed.
    on_signal : callable, optional
        ``on_signal(stream, fs, start, y)``, called with each filtered chunk of a stream (mV,
        from board index ``start``), for a display (:class:`ecgedge.view.feed.LiveFeed`).
    writer : CommitWriter, optional
        Instead of ``sinks``, ``on_beats`` and ``on_event``: the writer of the commits (a worker
        process's sends them down a pipe).

    Attributes
    ----------
    core : BridgeCore
    writer : CommitWriter
    links : list of BoardLink
    kept : Kept or None
        What :meth:`run` resumes the streams' patients from; None (default): what the sinks keep.
    """

    def __init__(
        self,
        scorer,
        settings: BridgeSettings | None = None,
        *,
        sinks: Sequence[Sink] = (),
        on_beats: Callable[[list[ScoredBeat]], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        on_signal: Callable[[str, float, int, np.ndarray], None] | None = None,
        writer: CommitWriter | None = None,
    ) -> None:
        self.writer = writer or CommitWriter(sinks, on_beats, on_event)
        self.core = BridgeCore(scorer, settings or BridgeSettings(), self.writer, on_signal)
        self.links: list[BoardLink] = []
        self.kept: Kept | None = None
        self._messages: queue.Queue[Message] = queue.Queue(maxsize=self.settings.max_queue)
        self._watched_at = 0.0

    @property
    def settings(self) -> BridgeSettings:
        """The settings the core runs by."""
        return self.core.settings

    @property
    def on_signal(self) -> Callable[[str, float, int, np.ndarray], None] | None:
        """Called with each filtered chunk of a stream (the core's)."""
        return self.core.on_signal

    @on_signal.setter
    def on_signal(self, callback: Callable[[str, float, int, np.ndarray], None] | None) -> None:
        self.core.on_signal = callback

    def add_board(self, board: BoardSpec | str, **options) -> BoardLink:
        """Add a board: a :class:`BoardSpec`, or its URL and the spec's other fields as keywords.

        Raises
        ------
        ValueError
            Two boards with one name or one port, or settings the bridge cannot use (see
            :class:`~ecgedge.firmware_bridge.settings.BoardSpec`).
        """
        spec = board if isinstance(board, BoardSpec) else BoardSpec(board, **options)
        self.core.add_stream(spec)
        link = BoardLink(self._messages, spec, lambda: self.core.fs_of(spec.name))
        self.links.append(link)
        return link

    def open_ports(self) -> None:
        """Open every port once (each for up to ``open_timeout`` s, together).

        Raises
        ------
        PortError
            Naming every port that did not open, and why. A monitor that cannot read a board it
            was given must not start as if it could.
        """
        errors: list[str] = []

        def try_open(link: BoardLink) -> None:
            try:
                link.source.open_first(self.settings.open_timeout)
            except PortError as exc:
                errors.append(str(exc))

        openers = [threading.Thread(target=try_open, args=(link,)) for link in self.links]
        for t in openers:
            t.start()
        for t in openers:
            t.join()
        if errors:
            for link in self.links:
                link.source.stop()
            raise PortError("; ".join(sorted(errors)))

    def run(self, duration: float | None = None, stop: threading.Event | None = None) -> dict:
        """Serve all boards until ``duration`` seconds pass or ``stop`` is set; return :meth:`summary`.

        Raises
        ------
        PortError
            When a port cannot be opened at start (see :meth:`open_ports`).
        """
        if not self.links:
            raise ValueError("no boards: add_board() first")
        try:
            self.open_ports()
        except PortError:
            self.writer.close()
            raise
        self.core.start(self.kept or kept_of(self.writer.sinks, self.core.specs, self.settings.judging))
        stop = stop or threading.Event()
        deadline = None if duration is None else time.perf_counter() + duration
        now = time.perf_counter()
        for link in self.links:
            link.progress_at = now
            link.source.start()
        try:
            while not stop.is_set() and (deadline is None or time.perf_counter() < deadline):
                self.step(0.05)
        finally:
            for link in self.links:
                link.closing = True
            for link in self.links:
                link.source.stop()
            self.core.handle(self._drain(), time.perf_counter())
            self.core.finish()
            self.writer.close()
        return self.summary()

    def step(self, timeout: float = 0.0) -> None:
        """One pass of :meth:`run`'s loop: wait up to ``timeout`` s for a message, handle all queued, watch."""
        self.core.handle(self._wait(timeout) + self._drain(), time.perf_counter())
        self._watch()

    @property
    def queued(self) -> int:
        """Messages waiting in the queue."""
        return self._messages.qsize()

    def wait_until_quiet(self, quiet: float = 0.5, timeout: float = 30.0) -> bool:
        """Block until no board has delivered a frame for ``quiet`` seconds and the queue is empty.

        Use it after the boards stop sending and before stopping :meth:`run`, so frames still
        buffered in the ports are read, however loaded the machine. Returns False when
        ``timeout`` seconds pass first.
        """
        end = time.perf_counter() + timeout
        last, still_since = -1, time.perf_counter()
        while time.perf_counter() < end:
            frames = sum(link.stats.frames for link in self.links)
            if frames != last or not self._messages.empty():
                last, still_since = frames, time.perf_counter()
            elif time.perf_counter() - still_since >= quiet:
                return True
            time.sleep(0.05)
        return False

    def _wait(self, timeout: float) -> list[Message]:
        """The next message, waiting up to ``timeout`` seconds for it, or none."""
        try:
            return [self._messages.get(timeout=timeout)]
        except queue.Empty:
            return []

    def _drain(self, most: int = 20_000) -> list[Message]:
        messages: list[Message] = []
        while len(messages) < most:
            try:
                messages.append(self._messages.get_nowait())
            except queue.Empty:
                break
        return messages

    def _watch(self) -> None:
        """The wall-clock watchdog: a connected port that delivers no valid frame raises ``no-data``."""
        now = time.perf_counter()
        if now - self._watched_at < _WATCH_EVERY_S:
            return
        self._watched_at = now
        for link in self.links:
            frames = link.stats.frames
            if frames != link.progress_frames or not link.source.connected:
                link.progress_frames, link.progress_at = frames, now
            quiet, stats = now - link.progress_at, link.stats
            detail = (
                f"no valid frame for {quiet:.0f} s while connected "
                f"({stats.garbage_bytes} garbage bytes, {stats.dropped} broken frames)"
            )
            self.core.condition(link.name, Condition.NO_DATA, quiet > self.settings.no_data_s, detail)
        self.core.flush()

    def fs_of(self, stream: str) -> float | None:
        """Sample rate of a stream (for sinks)."""
        return self.core.fs_of(stream)

    def close(self) -> None:
        """Stop every board's port and close the sinks, as the end of :meth:`run` does; safe to repeat."""
        for link in self.links:
            link.source.stop()
        self.core.finish()
        self.writer.close()

    def summary(self) -> dict:
        """Totals so far: beats, flags, link faults, events, shedding, latency percentiles (ms)."""
        pipelines = self.core.pipelines
        links = {
            link.name: {
                **link.stats.as_dict(),
                **vars(pipelines[link.name].counters),
                "reconnect_s": [round(r, 3) for r in link.source.reconnects],
                "active": self.core.conditions.active(link.name),
            }
            for link in self.links
        }
        return {
            "boards": len(self.links),
            **self.writer.counters(),
            "frames": sum(link.stats.frames for link in self.links),
            "frames_dropped": sum(link.stats.dropped for link in self.links),
            "frames_lost": sum(link.stats.lost for link in self.links),
            "garbage_bytes": sum(link.stats.garbage_bytes for link in self.links),
            "shed_samples": sum(p.counters.shed_samples for p in pipelines.values()),
            "shed_beats": sum(p.counters.shed_beats for p in pipelines.values()),
            **self.core.summary(),
            "links": links,
        }
