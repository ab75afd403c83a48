"""The process supervisor with real child processes: groups, stopping, identity, waiting, and
the state records `down` commands read back (also the dev cluster's records from before
`textops.processes`)."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from textops.devcluster import cluster as cluster_mod
from textops.devservers.ports import free_ports
from textops.processes import (
    ManagedProcess,
    StartupError,
    descendant_pids,
    log_tail,
    pid_alive,
    start_process,
    wait_until,
)

# Every child ends on its own after this long, even when a test fails before stopping it.
CHILD_LIFETIME_S = 60
WAIT_S = 20


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ManagedProcess]]:
    """Processes a test starts; whatever is left of them is stopped afterwards."""
    procs: list[ManagedProcess] = []
    yield procs
    for proc in procs:
        proc.stop(timeout=5)


def python(
    started: list[ManagedProcess], tmp_path: Path, name: str, code: str, **kwargs: Any
) -> ManagedProcess:
    """Start `code` in a fresh Python interpreter (ending after CHILD_LIFETIME_S at most)."""
    proc = start_process(
        name,
        [sys.executable, "-c", textwrap.dedent(code)],
        tmp_path / f"{name}.log",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        **kwargs,
    )
    started.append(proc)
    return proc


def logged(proc: ManagedProcess, text: str) -> bool:
    """Whether the child printed `text` (a whole line: the start header holds the argv)."""
    return text in proc.log_path.read_text().splitlines()


def printed_pid(proc: ManagedProcess, who: str) -> int:
    """The pid `proc` printed as a line `pid of <who> <pid>`, once it has."""
    prefix = f"pid of {who} "
    lines = wait_until(
        lambda: [ln for ln in proc.tail().splitlines() if ln.startswith(prefix)],
        timeout=WAIT_S,
        what=f"waiting for the pid of the {who}",
        proc=proc,
    )
    return int(lines[0].removeprefix(prefix))


SERVER = f"""
    import signal, sys, time
    def term(*_):
        print("got", "SIGTERM")
        sys.exit(3)
    signal.signal(signal.SIGTERM, term)
    print("up", "and", "ready")
    time.sleep({CHILD_LIFETIME_S})
"""


def ready_server(started: list[ManagedProcess], tmp_path: Path, name: str) -> ManagedProcess:
    """A child that has installed its SIGTERM handler (exit status 3) and said so."""
    proc = python(started, tmp_path, name, SERVER)
    wait_until(
        lambda: logged(proc, "up and ready"), timeout=WAIT_S, what="waiting for ready", proc=proc
    )
    return proc


def test_a_child_runs_in_its_own_session_and_group_and_logs_there(
    started: list[ManagedProcess], tmp_path: Path
) -> None:
    proc = ready_server(started, tmp_path, "server")
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    assert os.getsid(proc.pid) == proc.pid
    assert proc.alive() and proc.is_ours()
    assert proc.tail().splitlines()[0].startswith("=== ")  # the start header names the argv
    assert proc.stop(timeout=WAIT_S) is True
    assert proc.exit_code() == 3  # it got SIGTERM first, and handled it
    assert logged(proc, "got SIGTERM")
    assert not proc.alive()
    assert proc.stop() is False  # a second stop finds nothing


def test_stop_kills_a_grandchild_that_ignores_sigterm(
    started: list[ManagedProcess], tmp_path: Path
) -> None:
    proc = python(
        started,
        tmp_path,
        "forker",
        f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", '''
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("pid", "of", "grandchild", os.getpid(), flush=True)
        time.sleep({CHILD_LIFETIME_S})
        '''])
        time.sleep({CHILD_LIFETIME_S})
        """,
    )
    grandchild = printed_pid(proc, "grandchild")
    assert grandchild in descendant_pids(proc.pid)
    assert os.getpgid(grandchild) == proc.pid

    assert proc.stop(timeout=WAIT_S) is True
    assert proc.exit_code() == -signal.SIGTERM
    # SIGTERM is ignored there: only the SIGKILL of the whole group ends it
    wait_until(lambda: not pid_alive(grandchild), timeout=WAIT_S, what="waiting for the grandchild")


def test_a_record_whose_start_ticks_differ_is_never_signalled(
    started: list[ManagedProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = ready_server(started, tmp_path, "server")
    assert proc.start_ticks is not None
    record = {**proc.to_dict(), "start_ticks": proc.start_ticks + 1}
    recycled = ManagedProcess.from_dict(record)  # the pid now names "another" process
    unknown = ManagedProcess.from_dict({**proc.to_dict(), "start_ticks": None})

    def no_signals(pid: int, sig: int) -> None:
        if sig != 0:  # 0 only asks whether the pid exists
            raise AssertionError(f"signal {sig} sent to {pid}")

    with monkeypatch.context() as patch:
        patch.setattr(os, "killpg", no_signals)
        patch.setattr(os, "kill", no_signals)
        for stale in (recycled, unknown):
            assert not stale.is_ours()
            assert not stale.alive()
            assert stale.stop(timeout=1) is False
    assert proc.alive()
    # the true record stops it, from the state file alone
    assert ManagedProcess.from_dict(json.loads(json.dumps(proc.to_dict()))).stop(WAIT_S)
    wait_until(lambda: proc.exit_code() == 3, timeout=WAIT_S, what="waiting for the exit")


def test_wait_until_fails_fast_with_the_log_tail_when_the_process_exits(
    started: list[ManagedProcess], tmp_path: Path
) -> None:
    crashing = python(started, tmp_path, "crashing", "print('boom: no config file'); exit(2)")
    began = time.monotonic()
    with pytest.raises(StartupError) as failure:
        wait_until(lambda: False, timeout=WAIT_S, what="waiting for the port", proc=crashing)
    assert time.monotonic() - began < WAIT_S
    message = str(failure.value)
    assert "crashing exited (status 2) while waiting for the port" in message
    assert str(crashing.log_path) in message
    assert "boom: no config file" in message


def test_wait_until_watches_several_processes(
    started: list[ManagedProcess], tmp_path: Path
) -> None:
    steady = ready_server(started, tmp_path, "steady")
    crashing = python(started, tmp_path, "crashing", "print('kaput'); exit(5)")
    with pytest.raises(StartupError, match=r"(?s)crashing exited \(status 5\).*kaput"):
        wait_until(lambda: None, timeout=WAIT_S, what="waiting", proc=[steady, crashing])
    assert steady.alive()


def test_wait_until_returns_the_value_and_times_out_with_the_last_error(
    started: list[ManagedProcess], tmp_path: Path
) -> None:
    answers = iter([None, 0, "done"])
    assert wait_until(lambda: next(answers), timeout=WAIT_S, what="x", interval=0.01) == "done"

    steady = ready_server(started, tmp_path, "steady")

    def refused() -> bool:
        raise ConnectionRefusedError("nothing listens")

    with pytest.raises(StartupError) as failure:
        wait_until(refused, timeout=0.2, what="waiting for a socket", proc=steady, interval=0.05)
    message = str(failure.value)
    assert message.startswith("timed out after 0s waiting for a socket; last error:")
    assert "nothing listens" in message
    assert "up and ready" in message  # the watched process's log tail


def test_the_state_record_round_trips(started: list[ManagedProcess], tmp_path: Path) -> None:
    proc = ready_server(started, tmp_path, "server")
    record = json.loads(json.dumps(proc.to_dict()))
    assert set(record) == {"name", "pid", "log_path", "argv", "start_ticks"}
    again = ManagedProcess.from_dict(record)
    assert again == proc  # everything but the Popen handle
    assert again.popen is None
    assert again.is_ours() and again.alive()


def test_the_dev_clusters_former_record_is_read() -> None:
    old = {
        "name": "etcd",
        "pid": 4242,
        "start_time": 1234,
        "log": "/w/logs/etcd.log",
        "argv": ["e"],
    }
    proc = ManagedProcess.from_dict(old)
    assert proc == ManagedProcess("etcd", 4242, Path("/w/logs/etcd.log"), ["e"], 1234)
    # the former code wrote -1 when the start time was unknown: such a pid is never ours
    assert ManagedProcess.from_dict({**old, "start_time": -1}).start_ticks is None


@pytest.mark.parametrize("layout", ["current", "before-textops.processes"])
def test_cluster_down_stops_what_a_state_file_records(
    started: list[ManagedProcess], tmp_path: Path, layout: str
) -> None:
    """`cluster-down` in a new process: only the state file tells it what runs."""
    workdir = tmp_path / "cluster"
    workdir.mkdir()
    daemon = ready_server(started, tmp_path, "etcd")
    cluster = cluster_mod.Cluster(
        workdir=workdir,
        server="https://127.0.0.1:1",
        kubeconfig=workdir / "kubeconfig",
        tools=cast(Any, None),  # saving the state does not use the tools
        daemons=[daemon],
    )
    cluster.save_state()
    if layout != "current":  # what the former ProcInfo.to_dict wrote
        state = json.loads((workdir / cluster_mod.STATE_FILE).read_text())
        state["processes"] = [
            {
                "name": daemon.name,
                "pid": daemon.pid,
                "start_time": daemon.start_ticks,
                "log": str(daemon.log_path),
                "argv": daemon.argv,
            }
        ]
        (workdir / cluster_mod.STATE_FILE).write_text(json.dumps(state))

    assert cluster_mod.status(workdir)["processes"] == {"etcd": True}
    assert cluster_mod.stop_cluster(workdir) == ["etcd"]
    wait_until(lambda: daemon.exit_code() == 3, timeout=WAIT_S, what="waiting for the exit")
    assert not (workdir / cluster_mod.STATE_FILE).exists()


@pytest.mark.parametrize("death_signal", [signal.SIGTERM, signal.SIGKILL])
def test_a_child_started_with_die_with_parent_ends_with_its_parent(
    started: list[ManagedProcess], tmp_path: Path, death_signal: signal.Signals
) -> None:
    parent = python(
        started,
        tmp_path,
        "parent",
        f"""
        import signal, sys, time
        from pathlib import Path
        from textops.processes import start_process
        child = start_process(
            "child",
            [sys.executable, "-c", "import time; time.sleep({CHILD_LIFETIME_S})"],
            Path({str(tmp_path / "child.log")!r}),
            die_with_parent=True,
            death_signal=signal.Signals({int(death_signal)}),
        )
        print("pid", "of", "child", child.pid, flush=True)
        time.sleep({CHILD_LIFETIME_S})
        """,
        cwd=Path(__file__).resolve().parents[2],
    )
    child = printed_pid(parent, "child")
    assert pid_alive(child)
    os.kill(parent.pid, signal.SIGKILL)  # not its group: the child has a session of its own
    wait_until(lambda: not pid_alive(child), timeout=WAIT_S, what="waiting for the child to end")


def test_log_tail_keeps_the_last_lines_and_whole_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert log_tail(log) == ""  # missing
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    assert log_tail(log, lines=2) == "line 998\nline 999"
    cut = log_tail(log, lines=1000, max_bytes=30)
    assert cut.splitlines() == ["line 997", "line 998", "line 999"]


def test_free_ports_are_distinct() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(0 < p < 65536 for p in ports)
