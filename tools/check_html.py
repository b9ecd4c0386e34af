"""Render a leaderboard HTML page in headless Chromium: screenshot it to PNG and check the tables
are in the page as the browser built it (DOM after scripts ran). Used by `make html-check`.

Usage: python tools/check_html.py PAGE.html SCREENSHOT.png
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("headless Chromium not found: apt-get install chromium")


def main(page: Path, screenshot: Path) -> int:
    browser = chromium()
    url = page.resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        common = [browser, *FLAGS, f"--user-data-dir={profile}"]
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        subprocess.run(
            [*common, f"--screenshot={screenshot.resolve()}", "--window-size=1400,1600", url],
            capture_output=True,
            timeout=120,
            check=True,
        )
    problems = []
    if 'id="table-cmteb-' not in dom:
        problems.append("the C-MTEB table is missing from the rendered page")
    if "<svg" not in dom:
        problems.append("the category chart is missing from the rendered page")
    if not screenshot.is_file() or screenshot.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        problems.append(f"no PNG screenshot at {screenshot}")
    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        rows = dom.count("<tr")
        print(f"OK: {page} renders in Chromium with {rows} table rows; screenshot {screenshot}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
