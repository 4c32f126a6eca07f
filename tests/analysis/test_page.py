"""The report page as a browser shows it: real headless Chromium, driven over the DevTools protocol.

No pip packages (PyPI is unreachable here, websocket-client is absent), so the protocol runs over
`--remote-debugging-pipe`: Chromium reads commands from fd 3 and writes replies/events to fd 4,
each message a JSON object ended by a NUL byte. Script is evaluated only through the protocol; the
page itself must carry none.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from conftest import ARTIFACTS

CHROMIUM = Path("/usr/bin/chromium")
# Needed as root in this sandbox; the rest keep Chromium from phoning home or stalling on first run.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900",
         "--remote-debugging-pipe"]
VIEWPORT_HEIGHT = 900
TIMEOUT_S = 30.0

# Evaluated in the page after the load event: what a user would see broken.
PROBE = """JSON.stringify({
  scripts: document.scripts.length,
  images: document.images.length,
  broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href).filter(h => h.startsWith('file:')),
})"""


class Cdp:
    """A minimal DevTools-protocol client over the pipe: one command at a time, events kept."""

    def __init__(self, proc: subprocess.Popen, to_chrome: int, from_chrome: int) -> None:
        self.proc, self.w, self.r = proc, to_chrome, from_chrome
        self.buf, self.next_id = b"", 0
        self.events: list[dict] = []  # every event read so far, in order

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("no reply from Chromium")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise EOFError(f"Chromium closed the pipe (exit {self.proc.poll()})")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            m = self._read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
            self.events.append(m)

    def wait(self, method: str) -> dict:
        deadline = time.monotonic() + TIMEOUT_S
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read(deadline))
        return next(e for e in self.events if e.get("method") == method)


@dataclass
class PageCheck:
    """What Chromium saw on the page: every list empty means nothing is broken."""

    png: bytes
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    broken_images: list[str] = field(default_factory=list)
    missing_links: list[str] = field(default_factory=list)
    images: int = 0
    scripts: int = 0


def check_page(index: Path) -> PageCheck:
    """Load `index` in headless Chromium, collect errors and broken images, take a full-page PNG."""
    to_r, to_w = os.pipe()  # we write commands, Chromium reads them on fd 3
    from_r, from_w = os.pipe()  # Chromium writes on fd 4, we read

    def fds() -> None:
        # In the child: move both ends above 4 first (either may already sit on 3 or 4, where
        # dup2 onto itself would keep close-on-exec), then onto 3/4, which dup2 makes inheritable.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_r, from_w)]
        for fd, target in zip(high, (3, 4)):
            os.dup2(fd, target)
            os.close(fd)

    with tempfile.TemporaryDirectory(prefix="nmech-chromium-") as profile, \
            open(Path(profile) / "stderr.log", "w+b") as log:  # a file: a full pipe would stall Chromium
        proc = subprocess.Popen([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=fds, close_fds=False)
        os.close(to_r)
        os.close(from_w)
        cdp = Cdp(proc, to_w, from_r)
        try:
            target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            s = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                cdp.call(f"{domain}.enable", session=s)
            cdp.events.clear()  # only what the report page does counts
            nav = cdp.call("Page.navigate", {"url": index.resolve().as_uri()}, session=s)
            assert "errorText" not in nav, f"{index}: {nav['errorText']}"
            cdp.wait("Page.loadEventFired")
            probe = json.loads(cdp.call("Runtime.evaluate", {"expression": PROBE, "returnByValue": True},
                                        session=s)["result"]["value"])
            size = cdp.call("Page.getLayoutMetrics", session=s)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            shot = cdp.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                        "clip": clip}, session=s)
            cdp.call("Browser.close")
        except (TimeoutError, EOFError, RuntimeError) as e:
            log.seek(0)
            raise RuntimeError(f"{e}; Chromium's stderr ends:\n{log.read()[-3000:].decode(errors='replace')}") from e
        finally:
            os.close(to_w)
            os.close(from_r)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    result = PageCheck(png=base64.b64decode(shot["data"]), broken_images=probe["broken"],
                       images=probe["images"], scripts=probe["scripts"])
    urls = {e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in cdp.events if e.get("method") == "Network.requestWillBeSent"}
    # The page must be self-contained: anything but a local file is a remote resource.
    result.errors += [f"remote request: {u}" for u in urls.values() if not u.startswith(("file:", "data:"))]
    for e in cdp.events:
        p = e.get("params", {})
        match e.get("method"):
            case "Runtime.consoleAPICalled" if p["type"] in ("error", "assert"):
                result.errors.append("console: " + " ".join(str(a.get("value", a.get("description")))
                                                             for a in p["args"]))
            case "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                result.errors.append(f"exception: {d.get('exception', {}).get('description', d.get('text'))}")
            case "Log.entryAdded" if p["entry"]["level"] == "error":
                result.errors.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}")
            case "Network.loadingFailed" if not p.get("canceled"):
                result.errors.append(f"load failed: {p['errorText']} {urls.get(p['requestId'], '?')}")
    # Links are not loaded by the browser; check the files they point at exist beside the page.
    result.missing_links = [h for h in probe["links"] if not Path(unquote(urlparse(h).path)).exists()]
    return result


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} missing: run scripts/install-deps.sh (apt-get install -y chromium)")
    return CHROMIUM


def test_report_page_renders_cleanly(chromium: Path, report_dir: Path, tmp_path: Path) -> None:
    page = check_page(report_dir / "index.html")
    shot = tmp_path / "report_page.png"
    shot.write_bytes(page.png)
    if ARTIFACTS.parent.is_dir():  # keep it where a human can look at it
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, ARTIFACTS / "report_page.png")

    width, height = png_size(page.png)
    assert width >= 800
    assert height > 3 * VIEWPORT_HEIGHT, "the report is long; a short shot means it did not render"
    assert page.scripts == 0, "the report page must carry no script"
    assert page.images > 0
    assert page.errors == []
    assert page.broken_images == []
    assert page.missing_links == []


def test_broken_page_is_caught(chromium: Path, report_dir: Path, tmp_path: Path) -> None:
    """Teeth: the same check reports a figure and a CSV that index.html references but that are gone."""
    broken = tmp_path / "report"
    shutil.copytree(report_dir, broken)
    html = (broken / "index.html").read_text()
    victim = next(p for p in sorted(broken.glob("*.png")) if f'src="{p.name}"' in html)
    victim.unlink()
    csv = next(p for p in sorted(broken.glob("*.csv")) if f'href="{p.name}"' in html)
    csv.unlink()

    page = check_page(broken / "index.html")
    assert page.broken_images == [victim.name]
    assert any("ERR_FILE_NOT_FOUND" in e for e in page.errors), page.errors
    assert [Path(urlparse(h).path).name for h in page.missing_links] == [csv.name]
