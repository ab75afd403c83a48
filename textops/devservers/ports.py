"""Loopback port helpers.

Every dev server (and the dev cluster's daemons) binds a port the kernel picked as free a
moment before, so parallel test sessions, a developer's own servers and CI never collide on a
fixed number.  There is a small window between closing the probe socket and the server
binding it; `wait_for_port` plus the start-up checks in `textops.processes.wait_until` turn a
lost race into a clear error instead of a hang.
"""

from __future__ import annotations

import contextlib
import socket
import time

LOOPBACK = "127.0.0.1"


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return `count` distinct TCP ports on `host` that were free when asked (bound to port 0
    together, so they differ, read, closed)."""
    with contextlib.ExitStack() as stack:
        socks = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            for _ in range(count)
        ]
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on `host` that was free when asked."""
    return free_ports(1, host)[0]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> bool:
    """Poll until host:port accepts connections; False when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return True
        time.sleep(0.1)
    return False
