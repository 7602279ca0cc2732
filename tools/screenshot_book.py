"""Screenshot a page of the built book (make book) in headless Chromium -> docs/book.png.

Maintainer tool, not a test. It drives Debian's ``chromium`` over the DevTools protocol on a
pipe (no port, no extra packages), scrolls so that a section ends at the bottom of the window
(the theme keeps the chapter list and the contents beside it), waits for the fonts, and
saves the screenshot. `make book-screenshot` installs chromium and fonts-noto-cjk if missing.

Example:
    python tools/screenshot_book.py --page 04_nin.html --section glossary
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe"]

# Bring the section's end to the bottom of the window, then wait for fonts and two frames.
SCROLL = """(async () => {
  const el = document.getElementById(%s);
  if (!el) return "no element with id " + %s;
  const bottom = el.getBoundingClientRect().bottom + window.scrollY;
  document.documentElement.style.scrollBehavior = "auto";
  window.scrollTo(0, Math.max(0, bottom + 24 - window.innerHeight));
  await document.fonts.ready;
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return "ok";
})()"""


class DevTools:
    """The DevTools protocol over Chromium's pipe: fd 3 carries commands, fd 4 replies."""

    def __init__(self, chromium: str, user_dir: str):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire():  # in the child, before exec: the pipe ends become fds 3 and 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={user_dir}"],
                                     pass_fds=(3, 4), preexec_fn=wire,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._buffer = b""

    def _read_message(self, timeout: float = 60) -> dict:
        while b"\0" not in self._buffer:
            # bounded: a hung browser fails the caller instead of blocking it for ever
            if not select.select([self._from_chrome], [], [], timeout)[0]:
                raise RuntimeError(f"chromium sent nothing for {timeout:.0f} s")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe (did it start?)")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:  # skip events until our answer comes
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def wait_for(self, event: str, limit: int = 10_000) -> None:
        for _ in range(limit):  # bounded: a page sends far fewer events than this
            if self._read_message().get("method") == event:
                return
        raise RuntimeError(f"no {event} from chromium")

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def screenshot(url: str, out: Path, section: str, width: int, height: int) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium: apt-get install -y chromium fonts-noto-cjk "
                         "(or run make book-screenshot, which does)")
    with tempfile.TemporaryDirectory() as user_dir:
        chrome = DevTools(chromium, user_dir)
        try:
            target = chrome.send("Target.createTarget", url="about:blank")["targetId"]
            session = chrome.send("Target.attachToTarget", targetId=target,
                                  flatten=True)["sessionId"]
            chrome.send("Emulation.setDeviceMetricsOverride", session, width=width,
                        height=height, deviceScaleFactor=1, mobile=False)
            chrome.send("Page.enable", session)
            chrome.send("Page.navigate", session, url=url)
            chrome.wait_for("Page.loadEventFired")
            result = chrome.send("Runtime.evaluate", session, awaitPromise=True,
                                 expression=SCROLL % (json.dumps(section),
                                                      json.dumps(section)))
            if result["result"].get("value") != "ok":
                raise SystemExit(f"{url}: {result['result']}")
            png = chrome.send("Page.captureScreenshot", session, format="png")["data"]
        finally:
            chrome.close()
    out.write_bytes(base64.b64decode(png))
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB) from {url}#{section}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "docs/book/_build/html")
    parser.add_argument("--page", default="04_nin.html")
    parser.add_argument("--section", default="glossary", help="id of the element to show")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/book.png")
    parser.add_argument("--size", default="1280x1600", help="window size, WIDTHxHEIGHT")
    args = parser.parse_args()
    page = (args.site / args.page).resolve()
    if not page.exists():
        raise SystemExit(f"{page} not found: run make book first")
    width, height = (int(n) for n in args.size.split("x"))
    screenshot(page.as_uri(), args.out, args.section, width, height)


if __name__ == "__main__":
    main()
