"""Headless Chromium for the tests, driven over the DevTools protocol on a pipe.

Why this and not selenium or playwright: Chromium's ``--remote-debugging-pipe``
speaks the DevTools protocol (JSON messages ended by NUL) on file descriptors 3
and 4, so the standard library is enough: no chromedriver, no websocket client,
no browser download, nothing pinned to a browser version. We need four things
and get each with one command: load a file, wait for it, evaluate JavaScript,
take a screenshot; console messages and uncaught exceptions arrive as events.

    with Browser() as b:
        page = b.open(Path("graph.html"))        # waits for the load event
        page.errors                              # console errors + exceptions
        page.eval("document.querySelectorAll('svg').length")
        page.screenshot(Path("shot.png"))
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

#: the flags the brief names, for a browser that never reaches the network
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1")


class BrowserError(RuntimeError):
    pass


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.b = browser
        self.session = session
        self.errors: list[str] = []     #: console errors and uncaught exceptions, as text
        self.console: list[str] = []    #: every console message

    def call(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        return self.b.call(method, params, session=self.session, timeout=timeout)

    def eval(self, expression: str):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise BrowserError(r["exceptionDetails"].get("text", "exception"))
        return r["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: dict = {"format": "png"}
        if full_page:
            size = self.eval("[document.documentElement.scrollWidth, Math.ceil("
                             "document.body ? document.body.getBoundingClientRect().bottom + 8 : "
                             "document.documentElement.getBoundingClientRect().bottom)]")
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path


class Browser:
    """One headless Chromium with a fresh profile, closed (and its profile removed) on exit."""

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 900) -> None:
        exe = executable or shutil.which("chromium")
        if exe is None:
            raise BrowserError("chromium is not installed (Debian: chromium)")
        self.profile = tempfile.mkdtemp(prefix="tcpscope-chromium-")
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def fds() -> None:   # the child's fd 3 reads our commands, fd 4 writes its answers
            # (moved above 10 first: either pipe end may itself be fd 3 or 4)
            r, w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w))
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.width, self.height = width, height
        self._buf = b""
        self._id = 0
        self._pages: dict[str, Page] = {}

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", timeout=10)
            except (BrowserError, OSError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- the protocol ----------------------------------------------------------------------

    def _send(self, msg: dict) -> None:
        os.write(self._w, json.dumps(msg).encode() + b"\0")

    def _recv(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise BrowserError("chromium did not answer in time")
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise BrowserError("chromium closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        msg = json.loads(raw)
        self._event(msg)
        return msg

    def _event(self, msg: dict) -> None:
        page = self._pages.get(msg.get("sessionId", ""))
        method = msg.get("method")
        if page is None or method is None:
            return
        p = msg["params"]
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            page.console.append(f"{p['type']}: {text}")
            if p["type"] in ("error", "assert"):
                page.errors.append(text)
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            page.errors.append(d.get("exception", {}).get("description", d.get("text", "exception")))
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            page.errors.append(p["entry"]["text"])

    def call(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self._id += 1
        msg: dict = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._send(msg)
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise BrowserError(f"{method}: {m['error'].get('message')}")
                return m.get("result", {})

    def wait_event(self, page: Page, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv(deadline)
            if m.get("method") == method and m.get("sessionId") == page.session:
                return m["params"]

    def open(self, path: Path, timeout: float = 60.0) -> Page:
        """A new tab showing the file `path`, once it has loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = self._pages[session] = Page(self, session)
        for domain in ("Runtime", "Page", "Log"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False})
        page.call("Page.navigate", {"url": Path(path).resolve().as_uri()})
        self.wait_event(page, "Page.loadEventFired", timeout)
        return page
