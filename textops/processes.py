"""Start, watch and stop child processes: the one supervisor of the dev servers
(`textops.devservers`) and the dev cluster's daemons (`textops.devcluster`).

Why it exists: tests and developers run real servers (MariaDB, an S3 gateway, MLflow,
etcd, kube-apiserver, kubelet, ...) as plain local processes.  Each one must

* write everything it prints to its own log file, so a failed start or test can show why;
* run in its own session and process group, so stopping it also stops the workers it forked
  (uvicorn, gunicorn, ...) and nothing is left behind after a failed session;
* be recorded by pid *and* kernel start time (`start_ticks`), also in state files read back
  by another process (`down` commands), so a pid the kernel has since reused for something
  else is never signalled;
* be waited on through a real readiness check with a deadline; a wait that times out, or a
  watched process that dies meanwhile, raises `StartupError` carrying the tail of its log.

Nothing here knows about a particular server.

This module replaces two former copies (devservers' `procs` and devcluster's `processes`).
Where they differed, the safer behaviour was kept:

* Identity: a process read back from a state file is signalled only when its pid still has
  the recorded start time; a record without a start time is never signalled (devservers
  signalled it anyway).  While we are its parent and it is not yet reaped, its pid cannot be
  reused; after it has been reaped the group is still signalled as long as no new process
  holds its pid, so workers left in the group of a crashed leader are stopped too
  (devcluster left them behind).
* Parent death (`die_with_parent`): the kernel sends `death_signal` when the starting thread
  dies — SIGTERM by default so a database can close its files, SIGKILL where the caller
  asks for it (the dev cluster does, as before) — and the child exits at once if the parent
  already died before the request took effect (devcluster had no such check, so a daemon
  started just as its parent died ran on for ever).
* Stop: SIGTERM to the group, wait for the leader up to `timeout`, then SIGKILL whatever is
  left of the group (both did this); it returns whether the group was still there.
* Waiting: one `wait_until`.  It watches one process or several (a list that may grow while
  waiting) and fails fast with the exited one's log tail; devcluster's `wait_for` raised a
  `Timeout` without any tail and took a liveness callable instead.
* Log tails: bounded by lines and bytes, '' for a missing log (devcluster returned a note).
* State: `ManagedProcess.to_dict` writes name/pid/log_path/argv/start_ticks;
  `from_dict` also reads the dev cluster's former keys (log, start_time; -1 = unknown), so a
  cluster started before an upgrade can still be stopped after it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

TAIL_LINES = 60
TAIL_BYTES = 64 * 1024


class StartupError(RuntimeError):
    """A process did not become ready (a wait timed out, or it exited); the message holds
    the reason and its log tail."""


class MissingBinaryError(FileNotFoundError):
    """A server binary was not found; the message says how to build or install it."""


def log_tail(path: Path, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> str:
    """The last `lines` lines within the last `max_bytes` bytes of a log file ('' when it
    does not exist); never raises."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    kept = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes:
        kept = kept[1:]  # the first line was cut in the middle
    return "\n".join(kept[-lines:])


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state, ppid, pgrp, ...), None when there is none.

    The command name (field 2) may hold spaces and parentheses; the fields after it are plain.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    return stat[stat.rfind(")") + 2 :].split()


def start_ticks_of(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (Linux /proc), None if unknown."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None  # field 22 overall: starttime
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
    fields = _stat_fields(pid)
    return fields is None or fields[:1] != ["Z"]


def descendant_pids(pid: int) -> list[int]:
    """Pids of every live descendant of `pid` (Linux /proc), children first.

    Servers such as `bentoml serve` start workers in process groups of their own, which a
    signal to the leader's group does not reach; a caller records them before stopping the
    leader and checks afterwards that none survived.
    """
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [c for p in frontier for c in parents.get(p, [])]
        found.extend(children)
        frontier = children
    return found


@dataclass
class ManagedProcess:
    """A process started by `start_process` (or read back from a state file), leader of its
    own process group.

    `start_ticks` identifies the process beyond its pid, so a pid read back from a state
    file is never signalled after the kernel has reused it for something else.  `popen` is
    set when this process started it (and is its parent).
    """

    name: str
    pid: int
    log_path: Path
    argv: list[str] = field(default_factory=list)
    start_ticks: int | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def is_ours(self) -> bool:
        """True while the pid names the very process we started (alive or a zombie)."""
        return self.start_ticks is not None and start_ticks_of(self.pid) == self.start_ticks

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return pid_alive(self.pid) and self.is_ours()

    def exit_code(self) -> int | None:
        """Exit status when we are its parent and it has ended, else None."""
        return None if self.popen is None else self.popen.poll()

    def tail(self, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> str:
        return log_tail(self.log_path, lines, max_bytes)

    def check_alive(self, what: str = "running") -> None:
        """Raise StartupError with the log tail when the process has exited."""
        if not self.alive():
            code = self.exit_code()
            status = f"status {code}" if code is not None else "status unknown"
            raise StartupError(_describe(f"{self.name} exited ({status}) while {what}", self))

    def _group_is_ours(self) -> bool:
        """True when signalling the process group `pid` reaches only what we started."""
        if self.is_ours():
            return True
        # Our child, reaped: a member left in its group keeps its pid from being reused,
        # so the group is ours unless a new process holds that pid.
        return self.popen is not None and start_ticks_of(self.pid) is None

    def stop(self, timeout: float = 20.0) -> bool:
        """SIGTERM the whole process group, wait up to `timeout` for the leader, then SIGKILL
        what is left.  Returns whether the group was there; does nothing (False) when the
        pid no longer names the process we started."""
        if not self._group_is_ours():
            return False
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.alive()  # reap a zombie leader
            return False
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # stragglers, or a leader that ignored SIGTERM
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)
        return True

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
        """Read `to_dict`'s record, or the dev cluster's former one (log, start_time)."""
        ticks = data.get("start_ticks", data.get("start_time"))
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            log_path=Path(data["log_path"] if "log_path" in data else data["log"]),
            argv=[str(a) for a in data.get("argv", [])],
            start_ticks=int(ticks) if ticks is not None and int(ticks) >= 0 else None,
        )


_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up in the parent (the child between fork and exec only calls
    it); None where there is no Linux /proc."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name or not os.path.exists("/proc/self"):
        return None
    prctl: Callable[..., int] = ctypes.CDLL(libc_name, use_errno=True).prctl
    return prctl


def _parent_death_signal(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send `sig` to the child when its parent dies."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        # Only a prctl call and a getppid: no locks, no allocation, safe in a threaded parent.
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
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
    death_signal: signal.Signals = signal.SIGTERM,
) -> ManagedProcess:
    """Start `argv` in a new session (its own process group), stdout+stderr appended to log_path.

    `env` replaces the environment when given (pass `{**os.environ, ...}` to extend it).
    By default the process outlives the caller unless stopped, which the `up` commands rely
    on.  `die_with_parent=True` (test sessions) makes the kernel send `death_signal` to it if
    the calling thread dies, even by SIGKILL, so a killed test run leaves nothing behind.
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
            preexec_fn=_parent_death_signal(death_signal) if die_with_parent else None,
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
    proc: ManagedProcess | Iterable[ManagedProcess] | None = None,
    interval: float = 0.2,
) -> T:
    """Call `check` until it returns something truthy and return that.

    An exception from `check` counts as "not yet" (the last one is reported).  `proc` is
    the process waited on, or several (e.g. a list every process started so far is appended
    to): when one of them exits first, StartupError carries its log tail at once.  After
    `timeout` seconds StartupError says so, with the log tail of a single `proc`.
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
        for watched in [proc] if isinstance(proc, ManagedProcess) else proc or ():
            watched.check_alive(what)
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error!r}" if last_error is not None else ""
            single = proc if isinstance(proc, ManagedProcess) else None
            raise StartupError(_describe(f"timed out after {timeout:.0f}s {what}{detail}", single))
        time.sleep(interval)


def _describe(message: str, proc: ManagedProcess | None) -> str:
    if proc is None:
        return message
    return f"{message}\n--- last lines of {proc.log_path} ---\n{proc.tail()}"
