"""A look at the Dagster UI in a real browser: the asset page of an lv0 table, and its checks.

Not part of the tests (it needs a running UI and Debian's ``chromium``). With ``make dev``
running on data (``make demo`` first)::

    python -m bodyfriend_assets_tests.ui_smoke --url http://127.0.0.1:3000 --out ui_screenshots

drives headless Chromium over its DevTools protocol, opens the asset's overview, partitions and
checks pages, writes a screenshot of each, and reports whether each page shows what the operator
needs (the table's columns, its partitions, its checks). The exit code is 1 if something is missing.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

PAGE_TIMEOUT_SECONDS = 60
ASSET = "lv0/r_order_contract"
# (page, path under /assets/<asset>, texts the page must show once loaded)
PAGES = [
    ("overview", "", ["r_order_contract", "Columns", "order_no", "updt_dt"]),
    ("partitions", "?view=partitions", ["Partitions", "Materialized"]),
    ("checks", "?view=checks", ["row_count_matches_source", "keys_unique_and_not_null"]),
]

# The first visit of a browser profile gets a "Join the Dagster community" dialog over the page.
DISMISS_WELCOME = "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Skip')?.click()"


class DevTools:
    """One page of a headless Chromium, driven over the DevTools protocol."""

    def __init__(self, socket):
        self.socket = socket
        self.ids = itertools.count(1)

    def call(self, method: str, **params) -> dict:
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def text(self) -> str:
        result = self.call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''")
        return result["result"].get("value", "")


def start_chromium(profile: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise SystemExit("chromium is not installed (Debian: apt-get install chromium)")
    browser = subprocess.Popen(
        [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "--window-size=1600,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    for line in browser.stderr:  # "DevTools listening on ws://127.0.0.1:<port>/devtools/browser/..."
        if "DevTools listening on" in line:
            return browser, int(line.split("ws://127.0.0.1:")[1].split("/")[0])
    raise SystemExit("chromium exited before opening its DevTools port")


def page_socket(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as response:
        pages = [t for t in json.load(response) if t["type"] == "page"]
    return pages[0]["webSocketDebuggerUrl"]


def visit(tools: DevTools, url: str, expected: list[str]) -> tuple[list[str], bytes]:
    """Open ``url``, wait until every expected text shows (or the timeout); returns what is
    missing and a screenshot."""
    tools.call("Page.navigate", url=url)
    deadline = time.monotonic() + PAGE_TIMEOUT_SECONDS
    missing = expected
    while missing and time.monotonic() < deadline:
        time.sleep(1)
        tools.call("Runtime.evaluate", expression=DISMISS_WELCOME)
        shown = tools.text()
        missing = [text for text in expected if text not in shown]
    time.sleep(1)  # let the last requests render
    shot = tools.call("Page.captureScreenshot", format="png")["data"]
    return missing, base64.b64decode(shot)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="the Dagster UI")
    parser.add_argument("--out", type=Path, default=Path("ui_screenshots"), help="screenshot folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    with tempfile.TemporaryDirectory() as profile:
        browser, port = start_chromium(Path(profile))
        try:
            with connect(page_socket(port), max_size=64 * 1024 * 1024) as socket:
                tools = DevTools(socket)
                tools.call("Page.enable")
                for name, suffix, expected in PAGES:
                    url = f"{args.url.rstrip('/')}/assets/{ASSET}{suffix}"
                    missing, png = visit(tools, url, expected)
                    path = args.out / f"{ASSET.replace('/', '_')}_{name}.png"
                    path.write_bytes(png)
                    status = "ok" if not missing else f"MISSING {missing}"
                    print(f"{name:<11} {url}  {status}  -> {path}")
                    failures += bool(missing)
        finally:
            browser.terminate()
            browser.wait()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
