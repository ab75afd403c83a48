"""Child-process helpers shared by the dev servers (and usable by `textops.devcluster`).

Why they exist: tests and developers start real servers (MariaDB, an S3 gateway, MLflow, ...)
as plain local processes.  Each one must

* write everything it prints to its own log file, so a failed test can show why;
* run in its own process group, so stopping it also stops the workers it forked
  (uvicorn, gunicorn, ...) and nothing is left behind after a failed session;
* be waited on through a real readiness check with a deadline; a wait that times out, or a
  process that dies while starting, raises `StartupError` carrying the tail of its log.

Nothing here knows about a particular server.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

TAIL_LINES = 60


class StartupError(RuntimeError):
    """A server did not become ready; the message holds the reason and its log tail."""


class MissingBinaryError(FileNotFoundError):
    """A server binary was not found; the message says how to build or install it."""


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """Last `lines` lines of a log file ('' when it does not exist); never raises."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def start_ticks_of(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (Linux /proc), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields after it are plain.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 overall: starttime
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].split()[:1] != ["Z"]


def descendant_pids(pid: int) -> list[int]:
    """Pids of every live descendant of `pid` (Linux /proc), children first.

    Servers such as `bentoml serve` start workers in process groups of their own, which a
    signal to the leader's group does not reach; a caller records them before stopping the
    leader and checks afterwards that none survived.
    """
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [c for p in frontier for c in parents.get(p, [])]
        found.extend(children)
        frontier = children
    return found


@dataclass
class ManagedProcess:
    """A server process started by `start_process`, leader of its own process group.

    `start_ticks` identifies the process beyond its pid, so a pid read back from a state
    file is never signalled after the kernel has reused it for something else.
    """

    name: str
    pid: int
    log_path: Path
    argv: list[str] = field(default_factory=list)
    start_ticks: int | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def is_ours(self) -> bool:
        """True while the pid still names the process we started."""
        if self.start_ticks is None:
            return True
        return start_ticks_of(self.pid) == self.start_ticks

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return pid_alive(self.pid) and self.is_ours()

    def exit_code(self) -> int | None:
        """Exit status when we are its parent and it has ended, else None."""
        return None if self.popen is None else self.popen.poll()

    def tail(self, lines: int = TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the whole process group, wait up to `timeout`, then SIGKILL what is left."""
        if self.popen is None and not self.is_ours():
            return
        stop_process_group(self.pid, timeout=timeout, popen=self.popen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "log_path": str(self.log_path),
            "argv": self.argv,
            "start_ticks": self.start_ticks,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManagedProcess:
        ticks = data.get("start_ticks")
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            log_path=Path(data["log_path"]),
            argv=[str(a) for a in data.get("argv", [])],
            start_ticks=int(ticks) if ticks is not None else None,
        )


_PR_SET_PDEATHSIG = 1


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when its parent dies (None elsewhere).

    libc is looked up here, before fork: the child only makes one prctl call.
    """
    libc_name = ctypes.util.find_library("c")
    if not libc_name or not os.path.exists("/proc/self"):
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def start_process(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    die_with_parent: bool = False,
) -> ManagedProcess:
    """Start `argv` in a new session (its own process group), stdout+stderr appended to log_path.

    `env` replaces the environment when given (pass `{**os.environ, ...}` to extend it).
    By default the process outlives the caller unless stopped, which
    `python -m textops.devservers up` relies on.  `die_with_parent=True` (test sessions) makes
    the kernel SIGTERM it if the calling thread dies, even by SIGKILL, so a killed test run
    leaves no servers behind.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        log.write(f"=== {stamp} starting {name}: {shlex.join(argv)}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_parent_death_signal() if die_with_parent else None,
        )
    return ManagedProcess(
        name=name,
        pid=popen.pid,
        log_path=log_path,
        argv=list(argv),
        start_ticks=start_ticks_of(popen.pid),
        popen=popen,
    )


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    proc: ManagedProcess | None = None,
    interval: float = 0.2,
) -> T:
    """Call `check` until it returns something truthy and return that.

    An exception from `check` counts as "not yet" (the last one is reported).  Raises
    `StartupError` with `proc`'s log tail when `timeout` seconds pass or `proc` exits first.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except Exception as exc:
            last_error = exc
        else:
            if result:
                return result
        if proc is not None and not proc.alive():
            code = proc.exit_code()
            raise StartupError(_describe(f"{proc.name} exited (status {code}) while {what}", proc))
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error!r}" if last_error is not None else ""
            raise StartupError(_describe(f"timed out after {timeout:.0f}s {what}{detail}", proc))
        time.sleep(interval)


def _describe(message: str, proc: ManagedProcess | None) -> str:
    if proc is None:
        return message
    return f"{message}\n--- last lines of {proc.log_path} ---\n{proc.tail()}"


def stop_process_group(
    pid: int, *, timeout: float = 20.0, popen: subprocess.Popen[bytes] | None = None
) -> None:
    """Stop the process group led by `pid`: SIGTERM, wait for the leader, then SIGKILL the rest.

    Safe to call on a group that is already gone.
    """
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        if popen is not None:
            popen.poll()
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen is not None:
            if popen.poll() is not None:
                break
        elif not pid_alive(pid):
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # stragglers, or a leader that ignored SIGTERM
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=5)
