"""Headless Chromium for page tests, driven over the DevTools protocol.

Why: the serving page is plain HTML and JavaScript; only a real browser proves that pasting
texts, showing labels and posting feedback work. Chromium (Debian's `chromium`) runs as a child
process on a free loopback debugging port with a throw-away profile; `Page` sends DevTools
commands over one WebSocket (`websocket-client`), enough to navigate, run JavaScript and read
values back, with no WebDriver in between.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textops.devservers.ports import LOOPBACK, free_port
from textops.devservers.tools import find_binary
from textops.processes import ManagedProcess, start_process, wait_until

HINT = "install Debian's chromium package (apt-get install chromium)"


class Page:
    """One browser tab: `navigate(url)` and `evaluate(js)` (the value, JSON-compatible)."""

    def __init__(self, ws_url: str, timeout: float = 30.0) -> None:
        import websocket  # websocket-client, already required by the kubernetes client

        self._ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self._ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """A DevTools command's result; events arriving meanwhile are skipped."""
        command_id = next(self._ids)
        self._ws.send(json.dumps({"id": command_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == command_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """Run JavaScript in the page; raises with the message if it threw."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self._ws.close()


@dataclass
class Chromium:
    """A running headless Chromium with its DevTools endpoint on `port`."""

    port: int
    process: ManagedProcess = field(repr=False)

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.port}{path}", timeout=5) as resp:
            return json.load(resp)

    def page(self) -> Page:
        """The first open tab."""
        tabs = [t for t in self._get("/json/list") if t.get("type") == "page"]
        return Page(tabs[0]["webSocketDebuggerUrl"])

    def stop(self) -> None:
        self.process.stop(timeout=20)


def start_chromium(
    base_dir: Path, *, die_with_parent: bool = False, timeout: float = 60.0
) -> Chromium:
    """Start headless Chromium on about:blank; wait until its DevTools endpoint answers."""
    binary = find_binary("chromium", hint=HINT)
    base_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        str(binary),
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI, where the sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={base_dir / 'profile'}",
        f"--remote-debugging-address={LOOPBACK}",
        f"--remote-debugging-port={port}",
        "about:blank",
    ]
    proc = start_process(
        "chromium", argv, base_dir / "chromium.log", cwd=base_dir, die_with_parent=die_with_parent
    )
    browser = Chromium(port=port, process=proc)
    try:
        wait_until(
            lambda: any(t.get("type") == "page" for t in browser._get("/json/list")),
            timeout=timeout,
            what="waiting for Chromium's DevTools endpoint",
            proc=proc,
        )
    except BaseException:
        proc.stop()
        raise
    return browser
