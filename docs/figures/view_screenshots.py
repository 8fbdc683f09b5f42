"""Make docs/figures/view-live.png and view-review.png: the README's pictures of the bedside page.

Two boards (MIT-BIH 100 and 208 from ../shared/data) played at 4x into ``ecgedge bridge --http --db``,
the live page after 40 s and 3 s after board1 stops; then ``ecgedge review --http`` over that
session with one strip drawn. Needs Debian's chromium and playwright (``.ci/run`` installs both).

    python docs/figures/view_screenshots.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
ECGEDGE = [sys.executable, "-c", "from ecgedge.cli import main; main()"]
RECORD_208 = HERE.parents[2] / "shared" / "data" / "mitdb" / "208"
TOKEN = "screenshot-token-0123456"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def page_url(process: subprocess.Popen) -> str:
    return re.search(r"page at (http://\S+)", process.stderr.readline()).group(1)


def login(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 600})
    page.goto(url)
    page.fill("#token", TOKEN)
    page.click("button")
    return page


def main() -> None:
    from ecgedge.models import population_model_path

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        tmp = Path(tmp)
        subprocess.run([*ECGEDGE, "export", str(population_model_path()), "--out", str(tmp / "bundle")], check=True,
                       capture_output=True)
        boards = [subprocess.Popen([*ECGEDGE, "simulate", "--pty", "--link", str(tmp / f"b{i}"), "--speed", "4", *record],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                  for i, record in enumerate([[], ["--record", str(RECORD_208)]])]
        for board in boards:
            board.stdout.readline()
        bridge = subprocess.Popen([*ECGEDGE, "bridge", "--port", str(tmp / "b0"), "--port", str(tmp / "b1"), "--bundle",
                                   str(tmp / "bundle"), "--adapt", "60", "--db", str(tmp / "beats.db"), "--http",
                                   "127.0.0.1:0", "--http-token", TOKEN, "--duration", "60"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = login(browser, page_url(bridge))
        time.sleep(40)
        boards[1].terminate()
        time.sleep(3)
        page.screenshot(path=str(HERE / "view-live.png"))
        bridge.wait(120)
        boards[0].kill()
        review = subprocess.Popen([*ECGEDGE, "review", "--db", str(tmp / "beats.db"), "--http", "127.0.0.1:0",
                                   "--http-token", TOKEN, "--duration", "60"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        page = login(browser, page_url(review))
        page.wait_for_selector("#alarms li[data-event=beat]")
        page.locator("#alarms li[data-event=beat]").first.click()
        page.wait_for_selector("#strip canvas[data-drawn]")
        page.screenshot(path=str(HERE / "view-review.png"))
        review.kill()
        browser.close()


if __name__ == "__main__":
    main()
