"""Headless Chromium driven over the DevTools protocol, to look at a page as a browser does.

Debian's ``chromium`` is started with its own throwaway profile and a DevTools port chosen by
the OS on 127.0.0.1 (it prints the browser's WebSocket URL on stderr); the ``websockets``
client (a dependency already) sends commands. Everything the page fetches is recorded, so a
test can tell that a file loaded alone needed nothing else. The browser and every process it
started are stopped at the end (its own process group).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

LISTENING = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:\d+/\S+)")
START_TIMEOUT = 30.0
LOAD_TIMEOUT = 60.0
INSTALL_HINT = "run `bash scripts/setup.sh` as root (it installs Debian's chromium)"


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Page:
    """One tab: send DevTools commands, collect its events."""

    ws: ClientConnection
    session: str
    events: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return call(self, method, params, self.session)

    def wait_for(self, method: str, timeout: float = LOAD_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {timeout:.0f} s")
            self.events.append(json.loads(self.ws.recv(timeout=remaining)))

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited)."""
        reply = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page script failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self, path: Path, width: int) -> Path:
        """The whole page, top to bottom, as a PNG."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


def call(page: Page, method: str, params: dict[str, Any], session: str | None) -> dict[str, Any]:
    ident = page.next_id
    page.next_id += 1
    message: dict[str, Any] = {"id": ident, "method": method, "params": params}
    if session:
        message["sessionId"] = session
    page.ws.send(json.dumps(message))
    deadline = time.monotonic() + LOAD_TIMEOUT
    while True:
        reply: dict[str, Any] = json.loads(
            page.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        )
        if reply.get("id") == ident:
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result
        page.events.append(reply)


def _listening_url(proc: subprocess.Popen[bytes], log: Path) -> str:
    """The browser's DevTools URL, read from its stderr (a file: a pipe nobody drains
    would fill and stall the browser)."""
    deadline = time.monotonic() + START_TIMEOUT
    text = ""
    while time.monotonic() < deadline and proc.poll() is None:
        text = log.read_text(encoding="utf-8", errors="replace")
        match = LISTENING.search(text)
        if match:
            return match.group(1)
        time.sleep(0.1)
    raise RuntimeError("chromium did not start:\n" + text[-2000:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # Helpers (zygote, renderers) share the group: none may outlive the test.
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def open_page(url: str, width: int = 1100, height: int = 900) -> Iterator[Page]:
    """Load ``url`` in a fresh headless Chromium; yields once the load event has fired."""
    binary = chromium_path()
    if binary is None:
        raise FileNotFoundError("chromium not found: " + INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="orchestrate-chromium-") as profile:
        argv = [
            binary,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium refuses to sandbox as root
        log = Path(profile) / "stderr.log"
        with log.open("wb") as stderr:
            proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
            )
        try:
            url_ws = _listening_url(proc, log)
            with connect(url_ws, max_size=None, open_timeout=START_TIMEOUT) as ws:
                browser = Page(ws, session="")
                target = call(browser, "Target.createTarget", {"url": "about:blank"}, None)
                attached = call(
                    browser,
                    "Target.attachToTarget",
                    {"targetId": target["targetId"], "flatten": True},
                    None,
                )
                page = Page(ws, attached["sessionId"], next_id=browser.next_id)
                page.call("Page.enable")
                page.call("Network.enable")
                page.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=height,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                page.call("Page.navigate", url=url)
                page.wait_for("Page.loadEventFired")
                yield page
        finally:
            _stop(proc)
