"""What a process and its descendants use, and how busy the machine is, sampled from ``/proc`` (Linux)."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (via each thread's ``children`` list)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cpu_and_rss(pid: int) -> tuple[float, float] | None:
    """(CPU seconds, resident MB) of one process, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    rss_kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return (int(fields[11]) + int(fields[12])) / _TICK, rss_kb / 1024


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / _TICK, sum(ticks) / _TICK


def _spin(n: int = 10_000_000) -> None:
    total = 0
    for i in range(n):
        total += i


def machine_parallelism() -> float:
    """What 2 processes of plain Python get done against 1, right now: the most any 2-worker run could show."""

    def wall(k: int) -> float:
        started = time.perf_counter()
        procs = [mp.Process(target=_spin) for _ in range(k)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        return time.perf_counter() - started

    one = wall(1)
    return round(2 * one / wall(2), 3)


class TreeSampler:
    """Sample a process tree every ``every`` seconds in a thread, from :meth:`start` to :meth:`stop`.

    :meth:`stop` returns the tree's peak resident memory (the sum over its
    processes at one sample), its CPU seconds (each process's last sample,
    so a process that ended counts what it had used by then), the
    machine's CPU use over the same time (busy fraction of all cores) and
    its 1-minute load average (mean and max of the samples).
    """

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid = pid
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu: dict[int, float] = {}
        self._peak_rss = 0.0
        self._loads: list[float] = []
        self._machine_at_start = _machine_busy()

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def _sample(self) -> None:
        rss = 0.0
        for pid in _descendants(self.pid):
            seen = _cpu_and_rss(pid)
            if seen is not None:
                self._cpu[pid], used = seen
                rss += used
        self._peak_rss = max(self._peak_rss, rss)
        self._loads.append(os.getloadavg()[0])

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        (busy0, total0), (busy1, total1) = self._machine_at_start, _machine_busy()
        return {
            "peak_rss_mb": round(self._peak_rss, 1),
            "cpu_s": round(sum(self._cpu.values()), 2),
            "processes": len(self._cpu),
            "machine_busy": round((busy1 - busy0) / max(total1 - total0, 1e-9), 3),
            "load_1min_mean": round(sum(self._loads) / len(self._loads), 2) if self._loads else None,
            "load_1min_max": round(max(self._loads), 2) if self._loads else None,
        }
