"""Where every benchmark writes its dated results (``<folder>/<name>-<UTC date>.json`` and ``.md``) and its figures."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine(**versions: str) -> dict:
    """The machine a benchmark ran on: platform, CPUs, load average, Python, ecgedge and ``versions``."""
    from ecgedge import __version__

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
        "ecgedge": __version__,
        **versions,
    }


def write_results(name: str, report: dict, markdown: str, folder: Path = RESULTS, tag: str = "") -> Path:
    """Write ``report`` as JSON and ``markdown`` next to it; return the common stem.

    Parameters
    ----------
    name : str
        The benchmark's name, the start of both file names.
    report : dict
        Everything measured, with machine, versions and settings.
    markdown : str
        The tables the README quotes.
    folder : Path, default=benchmarks/results
    tag : str, default=""
        Appended after the date with a hyphen, to tell runs of one day apart.
    """
    folder.mkdir(parents=True, exist_ok=True)
    date = dt.datetime.now(dt.timezone.utc).date().isoformat()
    stem = folder / "-".join(filter(None, [name, date, tag]))
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown.rstrip("\n") + "\n")
    print(f"wrote {stem}.json and {stem}.md")
    return stem


def save_figure(fig, out: Path) -> None:
    """Lay out a matplotlib figure and write it to ``out`` (a PNG for the README), saying where."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
