"""The bedside page in a real browser: headless Chromium (Debian's package) driven by Playwright.

A live run as a user starts one: two ``ecgedge simulate --pty`` boards (MIT-BIH 100, and 208 with
its ventricular beats when ``../shared/data`` has it) into ``ecgedge bridge --http``. Skips with
the reason when Chromium or Playwright is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")

ECGEDGE = [sys.executable, "-c", "from ecgedge.cli import main; main()"]
RECORD_208 = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb" / "208"
TOKEN = "browser-test-token-4567"
# the flags the environment notes ask for: no network, no first-run work (the machine has no internet)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def live(population_bundle, tmp_path):
    """Two simulated boards and a bridge serving the page; yields (page URL, the boards' processes)."""
    records = [[], ["--record", str(RECORD_208)] if RECORD_208.with_suffix(".hea").exists() else []]
    boards = []
    for i, record in enumerate(records):
        link = tmp_path / f"board{i}"
        boards.append(
            subprocess.Popen(
                [*ECGEDGE, "simulate", "--pty", "--link", str(link), "--speed", "8", *record],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
        assert boards[-1].stdout.readline().startswith("port: ")
    bridge = subprocess.Popen(
        [
            *ECGEDGE,
            "bridge",
            "--port",
            str(tmp_path / "board0"),
            "--port",
            str(tmp_path / "board1"),
            "--bundle",
            str(population_bundle),
            "--adapt",
            "20",
            "--http",
            "127.0.0.1:0",
            "--http-token",
            TOKEN,
            "--duration",
            "120",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = bridge.stderr.readline()
        url = re.search(r"page at (http://\S+)", line)
        assert url, line + bridge.stderr.read()
        yield url.group(1), boards
    finally:
        for process in [bridge, *boards]:
            process.kill()
            process.wait(10)


@pytest.fixture
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _tiles(page) -> dict:
    return {t["board"]: t for t in page.eval_on_selector_all(".tile", "ts => ts.map(t => ({...t.dataset}))")}


def _wait(page, predicate, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        tiles = _tiles(page)
        if predicate(tiles) or time.monotonic() > deadline:
            return tiles
        time.sleep(0.1)


def test_the_live_page_shows_every_board_its_beats_flags_and_a_lost_link(live, browser, tmp_path):
    url, boards = live
    page = browser.new_page(viewport={"width": 1400, "height": 700})
    page.goto(url)
    page.fill("#token", "not-the-token-00000000")
    page.click("button")
    page.wait_for_selector("#status[data-state=refused]", timeout=60_000)
    assert page.text_content("#status") == "access token refused" and _tiles(page) == {}

    page.fill("#token", TOKEN)
    page.click("button")
    page.wait_for_selector("#status[data-state=live]", timeout=60_000)
    tiles = _wait(page, lambda t: len(t) == 2 and all(int(b.get("beats", 0)) > 0 for b in t.values()), 60)
    assert sorted(tiles) == ["board0", "board1"]
    before = int(tiles["board0"]["beats"])
    tiles = _wait(page, lambda t: int(t["board0"]["beats"]) > before, 60)
    assert int(tiles["board0"]["beats"]) > before  # the beat count rises
    if RECORD_208.with_suffix(".hea").exists():  # 208's ventricular beats are flagged, and drawn on its strip
        tiles = _wait(page, lambda t: int(t["board1"].get("drawnFlags", 0)) > 0, 60)
        assert int(tiles["board1"]["flagged"]) > 0 and int(tiles["board1"]["drawnFlags"]) > 0
    page.screenshot(path=str(tmp_path / "live.png"))

    boards[1].terminate()  # the board stops: its pty closes, and the page is told without being reloaded
    tiles = _wait(page, lambda t: t["board1"]["link"] == "down", 60)
    assert tiles["board1"]["link"] == "down" and "link-down" in tiles["board1"]["alarms"]
    line = page.locator("#alarms li[data-event=technical][data-board=board1]")  # the board's technical line
    assert line.count() == 1 and "link-down" in line.text_content()
    assert tiles["board0"]["link"] == "up"


def test_the_review_page_of_a_finished_session_lists_its_alarms_and_draws_a_strip(bridge_session, browser, tmp_path):
    db, summary = bridge_session
    review = subprocess.Popen(
        [*ECGEDGE, "review", "--db", str(db), "--http", "127.0.0.1:0", "--http-token", TOKEN, "--duration", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = review.stderr.readline()
        url = re.search(r"page at (http://\S+)", line)
        assert url, line + review.stderr.read()
        page = browser.new_page(viewport={"width": 1400, "height": 700})
        page.goto(url.group(1))
        page.fill("#token", TOKEN)
        page.click("button")
        page.wait_for_selector("#status[data-state=review]", timeout=60_000)
        page.wait_for_selector("#alarms li[data-strip]", timeout=60_000)
        kept = page.locator("#alarms li[data-strip]")
        assert kept.count() >= 1 and page.locator("#alarms li[data-event=rhythm-change]").count() >= 1
        assert _tiles(page)["bed1"]["beats"] == str(summary["beats"])
        kept.first.click()
        page.wait_for_selector("#strip canvas[data-drawn]", timeout=60_000)
        page.screenshot(path=str(tmp_path / "review.png"))
    finally:
        review.kill()
        review.wait(10)
