"""Start, watch and stop the dev cluster's daemons as process groups.

One job: run a binary in its own session with its output in a log file, record who it is
(pid plus kernel start time, so a recycled pid is never killed), and stop it and anything it
forked by signalling its process group. Also the small helpers every start-up step needs:
picking free ports and waiting on a condition with a deadline instead of sleeping blindly.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from textops.devservers.procs import start_ticks_of

T = TypeVar("T")
_PR_SET_PDEATHSIG = 1


class Timeout(RuntimeError):
    """A waited-for condition did not hold before its deadline."""


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return `count` distinct free ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 0.2,
    alive: Callable[[], None] | None = None,
) -> T:
    """Poll `probe` until it returns something truthy; raise Timeout after `timeout` s.

    `alive` is called on each round and may raise (e.g. when the daemon being waited on has
    exited), so a crash fails fast instead of after the whole timeout. Exceptions raised by
    `probe` count as "not yet" and the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if alive is not None:
            alive()
        try:
            result = probe()
            if result:
                return result
        except Exception as exc:  # any failure of a probe means "not ready yet"
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise Timeout(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


# Resolved once in the parent: the child between fork and exec must only make the call.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    """Run in the child before exec: get SIGKILL if the parent dies (Linux prctl)."""
    _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


@dataclass(frozen=True)
class ProcInfo:
    """What is needed to find a started daemon again, also from another process."""

    name: str
    pid: int
    start_time: int
    log: str
    argv: list[str]

    def running(self) -> bool:
        """True while the very process we started (not a recycled pid) is alive."""
        if start_ticks_of(self.pid) != self.start_time:
            return False
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Daemon:
    """A started binary: its Popen handle (when we are its parent) and its ProcInfo."""

    def __init__(self, info: ProcInfo, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.info = info
        self.popen = popen

    @property
    def name(self) -> str:
        return self.info.name

    def running(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return self.info.running()

    def check_alive(self) -> None:
        """Raise RuntimeError with the log tail if the daemon has exited."""
        if not self.running():
            code = self.popen.returncode if self.popen is not None else "?"
            raise RuntimeError(
                f"{self.name} exited (code {code}); last log lines:\n{tail(Path(self.info.log))}"
            )

    def stop(self, grace: float = 10.0) -> None:
        stop_group(self.info, grace)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)


def start(
    name: str,
    argv: Sequence[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    die_with_parent: bool = False,
) -> Daemon:
    """Start `argv` in a new session (its own process group) logging to `log`.

    With `die_with_parent` the kernel kills it when the starting process dies, however it
    dies (a test run killed with SIGKILL leaves nothing behind).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            # Only a prctl call: no locks, no allocation, so safe in a threaded parent.
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    started = start_ticks_of(popen.pid)
    info = ProcInfo(name, popen.pid, started if started is not None else -1, str(log), list(argv))
    return Daemon(info, popen)


def stop_group(info: ProcInfo, grace: float = 10.0) -> bool:
    """SIGTERM the process group led by `info.pid`, then SIGKILL it after `grace` seconds.

    Does nothing (returns False) when that pid is not the process we started.
    """
    if not info.running():
        return False
    _signal_group(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not info.running():
            break
        time.sleep(0.1)
    # Children the leader forked may outlive it: kill whatever is left in the group.
    _signal_group(info.pid, signal.SIGKILL)
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


def tail(path: Path, max_bytes: int = 8000) -> str:
    """Return the end of a log file (or a note that it is missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError as exc:
        return f"<no log: {exc}>"
    text = data.decode("utf-8", "replace")
    return ("...\n" if size > max_bytes else "") + text
