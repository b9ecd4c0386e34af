"""Render a leaderboard HTML page in headless Chromium at 1280 px: screenshot it to PNG and check the
page as the browser laid it out (DOM after scripts ran): the tables and one chart per protocol are
there, the page is no wider than the window (wide tables scroll inside their own box), the model
column stays in view, captions are folded. Used by `make html-check`.

Usage: python tools/check_html.py PAGE.html SCREENSHOT.png
"""

from __future__ import annotations

import html
import json
import re
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


WIDTH = 1280
#: Added to a copy of the page (never to the page itself): the layout as the browser computed it.
PROBE = """<script>
window.addEventListener("load", function () {
  var charts = Array.prototype.map.call(document.querySelectorAll("div.chart svg"), function (svg) {
    return svg.querySelectorAll("text + rect, rect + text").length; });
  var firstCells = document.querySelectorAll("table td:first-child");
  var report = {
    page_width: document.documentElement.scrollWidth,
    charts: document.querySelectorAll("div.chart svg").length,
    sticky: Array.prototype.every.call(firstCells, function (td) {
      return getComputedStyle(td).position === "sticky"; }),
    open_captions: document.querySelectorAll("details.caption[open]").length,
    captions: document.querySelectorAll("details.caption").length
  };
  var pre = document.createElement("pre"); pre.id = "layout-report";
  pre.textContent = JSON.stringify(report); document.body.appendChild(pre);
});
</script>"""


def layout(browser: str, page: Path, profile: str) -> dict:
    """The probe's report on a copy of `page`, laid out at WIDTH px."""
    probe_page = Path(profile) / "probe.html"
    probe_page.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    command = [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},900", "--dump-dom"]
    dom = subprocess.run([*command, probe_page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="layout-report">(.*?)</pre>', dom)
    return json.loads(html.unescape(found.group(1))) if found else {}


def main(page: Path, screenshot: Path) -> int:
    browser = chromium()
    url = page.resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        common = [browser, *FLAGS, f"--user-data-dir={profile}"]
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        subprocess.run(
            [*common, f"--screenshot={screenshot.resolve()}", f"--window-size={WIDTH},2400", url],
            capture_output=True,
            timeout=120,
            check=True,
        )
        report = layout(browser, page, profile)
    problems = []
    if not report:
        problems.append("the layout probe did not run")
    elif report["page_width"] > WIDTH:
        problems.append(f"the page is {report['page_width']} px wide at a {WIDTH} px window: something does not scroll")
    elif not report["sticky"] or report["open_captions"]:
        problems.append("the model column does not stay in view, or captions are unfolded")
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
        print(
            f"OK: {page} renders in Chromium with {rows} table rows, {report['charts']} charts (one per protocol), "
            f"{report['page_width']} px wide at a {WIDTH} px window, {report['captions']} folded captions; "
            f"screenshot {screenshot}"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
