"""`python -m textops.devservers up|down|status|env`: the test servers, for people.

`up` starts MariaDB, the S3 gateway and MLflow in the background (they outlive this command),
records them in `$TEXTOPS_HOME/servers/state.json` (TEXTOPS_HOME defaults to ./.textops) and
prints `export` lines on stdout, so `eval "$(python -m textops.devservers up)"` configures a
shell.  Progress goes to stderr.  Data persists in the same directory across `down`/`up`;
`down --purge` deletes it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from textops.devservers import (
    MLFLOW_DB,
    MariaDBServer,
    MissingBinaryError,
    MlflowServer,
    S3Server,
    StartupError,
    stack_env,
    start_mariadb,
    start_mlflow,
    start_s3,
)

ORDER = ("mariadb", "s3", "mlflow")  # start order; stopped in reverse


def servers_dir() -> Path:
    home = Path(os.environ.get("TEXTOPS_HOME") or ".textops")
    return (home / "servers").resolve()


def _state_path(root: Path) -> Path:
    return root / "state.json"


def _load(root: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(_state_path(root).read_text())
    except FileNotFoundError:
        return {}
    return data


def _save(root: Path, state: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = _state_path(root).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(_state_path(root))


def _servers(
    state: dict[str, Any],
) -> tuple[MariaDBServer | None, S3Server | None, MlflowServer | None]:
    db = MariaDBServer.from_dict(state["mariadb"]) if "mariadb" in state else None
    s3 = S3Server.from_dict(state["s3"]) if "s3" in state else None
    ml = MlflowServer.from_dict(state["mlflow"]) if "mlflow" in state else None
    return db, s3, ml


def _print_env(env: dict[str, str]) -> None:
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _stop_all(root: Path, state: dict[str, Any]) -> None:
    db, s3, ml = _servers(state)
    for name, server in (("mlflow", ml), ("s3", s3), ("mariadb", db)):
        if server is None:
            continue
        if server.process.alive():
            _note(f"stopping {name} (pid {server.process.pid})")
            server.stop()
        state.pop(name, None)
        _save(root, state)
    _state_path(root).unlink(missing_ok=True)


def cmd_up(root: Path) -> int:
    state = _load(root)
    db, s3, ml = _servers(state)
    if db and s3 and ml and all(s.process.alive() for s in (db, s3, ml)):
        _note(f"servers already running (state in {_state_path(root)})")
        _print_env(stack_env(db, s3, ml))
        return 0
    if state:
        _note("some servers from the last `up` are gone; restarting all")
        _stop_all(root, state)
        state = {}
    try:
        t0 = time.monotonic()
        db = start_mariadb(root / "mariadb")
        state["mariadb"] = db.to_dict()
        _save(root, state)
        _note(f"mariadb ready on {db.host}:{db.port} in {time.monotonic() - t0:.1f}s")
        t0 = time.monotonic()
        s3 = start_s3(root / "s3")
        state["s3"] = s3.to_dict()
        _save(root, state)
        _note(f"s3 (versitygw) ready on {s3.endpoint} in {time.monotonic() - t0:.1f}s")
        t0 = time.monotonic()
        ml = start_mlflow(root / "mlflow", backend_store_uri=db.url(MLFLOW_DB), s3=s3)
        state["mlflow"] = ml.to_dict()
        _save(root, state)
        _note(f"mlflow ready at {ml.tracking_uri} in {time.monotonic() - t0:.1f}s")
    except (StartupError, MissingBinaryError) as exc:
        _note(f"error: {exc}")
        _stop_all(root, state)
        return 1
    except BaseException:
        _stop_all(root, state)
        raise
    _note(f"logs: {root}/*/*.log; stop with: python -m textops.devservers down")
    _print_env(stack_env(db, s3, ml))
    return 0


def cmd_down(root: Path, purge: bool) -> int:
    state = _load(root)
    if not state:
        _note("no servers recorded as running")
    _stop_all(root, state)
    if purge and root.exists():
        _note(f"deleting {root}")
        shutil.rmtree(root)
    return 0


def cmd_status(root: Path) -> int:
    state = _load(root)
    if not state:
        print("not running")
        return 1
    db, s3, ml = _servers(state)
    all_up = True
    for name, server, where in (
        ("mariadb", db, db and f"{db.host}:{db.port}"),
        ("s3", s3, s3 and s3.endpoint_url),
        ("mlflow", ml, ml and ml.tracking_uri),
    ):
        if server is None:
            print(f"{name:8} missing")
            all_up = False
            continue
        alive = server.process.alive()
        all_up = all_up and alive
        up = "up" if alive else "DOWN"
        print(f"{name:8} {up:4} pid {server.process.pid:<7} {where}  log {server.log_path()}")
    return 0 if all_up else 1


def cmd_env(root: Path) -> int:
    db, s3, ml = _servers(_load(root))
    if not (db and s3 and ml):
        _note("servers are not running: python -m textops.devservers up")
        return 1
    _print_env(stack_env(db, s3, ml))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m textops.devservers",
        description="Start/stop local MariaDB + S3 (versitygw) + MLflow servers.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the servers (if not running) and print export lines")
    down = sub.add_parser("down", help="stop the servers")
    down.add_argument("--purge", action="store_true", help="also delete their data and logs")
    sub.add_parser("status", help="show pids, addresses and logs")
    sub.add_parser("env", help="print export lines for running servers")
    args = parser.parse_args(argv)
    root = servers_dir()
    if args.command == "up":
        return cmd_up(root)
    if args.command == "down":
        return cmd_down(root, args.purge)
    if args.command == "status":
        return cmd_status(root)
    return cmd_env(root)


if __name__ == "__main__":
    sys.exit(main())
