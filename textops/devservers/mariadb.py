"""A private MariaDB instance: MLflow's backend store and the label store's database.

Why private: the system service may be absent (CI), configured latin1, or shared; tests need
a server they own, on a free loopback port, with a datadir they can throw away.  Why utf8mb4
from the start: MLflow on a latin1 MySQL database fails with error 1267 (illegal mix of
collations) on Chinese experiment and model names, and converting an existing MLflow database
afterwards fails on its foreign keys.  So every database is created
`CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci` and the server defaults to the same.

Set-up work is done as MariaDB's root over the unix socket (root has no password and is only
reachable locally); applications use the `textops` user over TCP on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from textops.devservers.ports import LOOPBACK, free_port
from textops.devservers.tools import find_binary
from textops.processes import (
    ManagedProcess,
    StartupError,
    log_tail,
    start_process,
    wait_until,
)

DEFAULT_USER = "textops"
DEFAULT_PASSWORD = "textops-dev"
MLFLOW_DB = "mlflow"
LABELS_DB = "textops_labels"
DEFAULT_DATABASES = (MLFLOW_DB, LABELS_DB)
CHARSET = "utf8mb4"
COLLATION = "utf8mb4_unicode_ci"
INSTALL_HINT = "install the Debian package: apt-get install mariadb-server"
# Small footprint: the machine is shared with Go builds and model training.
SERVER_TUNING = (
    "--innodb-buffer-pool-size=64M",
    "--innodb-log-file-size=16M",
    "--innodb-flush-log-at-trx-commit=2",
    "--innodb-doublewrite=0",
    "--performance-schema=OFF",
    "--max-connections=200",
)
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux
_SOCKET_TMP_PREFIX = "textops-mdb-"  # short socket directory when base_dir is too deep


def _root_args() -> list[str]:
    # mariadbd refuses to run as root unless told to.
    return ["--user=root"] if os.geteuid() == 0 else []


def _socket_path(base_dir: Path) -> Path:
    path = base_dir / "mysqld.sock"
    if len(str(path)) <= _SOCKET_PATH_MAX:
        return path
    return Path(tempfile.mkdtemp(prefix=_SOCKET_TMP_PREFIX)) / "mysqld.sock"


@dataclass
class MariaDBServer:
    """A running MariaDB; `url(db)` gives the SQLAlchemy URL applications use."""

    host: str
    port: int
    user: str
    password: str
    socket: Path
    datadir: Path
    process: ManagedProcess = field(repr=False)

    def url(self, db: str, driver: str = "mysql+pymysql") -> str:
        """SQLAlchemy URL for database `db` as the application user, utf8mb4 on the wire."""
        creds = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"{driver}://{creds}@{self.host}:{self.port}/{db}?charset={CHARSET}"

    def root_url(self, db: str = "") -> str:
        """SQLAlchemy URL for MariaDB's root over the unix socket (administration only)."""
        return f"mysql+pymysql://root@localhost/{db}?unix_socket={self.socket}&charset={CHARSET}"

    def create_database(self, name: str, grant_to_user: bool = True) -> None:
        """Create database `name` (utf8mb4) if missing and let the application user use it."""
        _admin(self.root_url(), _database_sql(name, self.user, grant_to_user))

    def log_path(self) -> Path:
        return self.process.log_path

    def stop(self) -> None:
        self.process.stop(timeout=60)
        if self.socket.parent.name.startswith(_SOCKET_TMP_PREFIX):
            shutil.rmtree(self.socket.parent, ignore_errors=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "socket": str(self.socket),
            "datadir": str(self.datadir),
            "process": self.process.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MariaDBServer:
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            user=str(data["user"]),
            password=str(data["password"]),
            socket=Path(data["socket"]),
            datadir=Path(data["datadir"]),
            process=ManagedProcess.from_dict(data["process"]),
        )


def _database_sql(name: str, user: str, grant: bool) -> list[str]:
    stmts = [f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET {CHARSET} COLLATE {COLLATION}"]
    if grant:
        stmts += [f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'{h}'" for h in _USER_HOSTS]
    return stmts


_USER_HOSTS = (LOOPBACK, "localhost")


def _admin(url: str, statements: Sequence[str]) -> None:
    """Run administrative statements through SQLAlchemy (pymysql driver)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for stmt in statements:
                conn.execute(sa.text(stmt))
    finally:
        engine.dispose()


def _ping(url: str) -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def init_datadir(datadir: Path, log_path: Path) -> bool:
    """Create the system tables in `datadir` unless already there; True when it did.

    A marker file written last tells a complete datadir from one an interrupted run left.
    """
    marker = datadir / ".textops-initialised"
    if marker.exists():
        return False
    install_db = find_binary("mariadb-install-db", hint=INSTALL_HINT)
    shutil.rmtree(datadir, ignore_errors=True)
    datadir.mkdir(parents=True)
    argv = [
        str(install_db),
        "--no-defaults",
        f"--datadir={datadir}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--skip-name-resolve",
        "--innodb-log-file-size=16M",
        *_root_args(),
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"=== initialising {datadir}\n".encode())
        log.flush()
        result = subprocess.run(
            argv, stdout=log, stderr=subprocess.STDOUT, timeout=300, check=False
        )
    if result.returncode != 0:
        raise StartupError(
            f"mariadb-install-db failed with status {result.returncode}\n"
            f"--- last lines of {log_path} ---\n{log_tail(log_path)}"
        )
    marker.write_text("mariadb-install-db completed\n")
    return True


def start_mariadb(
    base_dir: Path,
    *,
    port: int | None = None,
    user: str = DEFAULT_USER,
    password: str = DEFAULT_PASSWORD,
    databases: Sequence[str] = DEFAULT_DATABASES,
    die_with_parent: bool = False,
    timeout: float = 120.0,
) -> MariaDBServer:
    """Start mariadbd on `base_dir/data` (initialised on first use) and a free loopback port.

    Creates `user`/`password` (for 127.0.0.1 and localhost) and `databases`, all utf8mb4.
    The log is `base_dir/mariadb.log`.  An existing datadir is reused, so data survives a
    stop/start cycle.  `die_with_parent`: see `textops.processes.start_process`.
    """
    mariadbd = find_binary("mariadbd", hint=INSTALL_HINT)
    base_dir.mkdir(parents=True, exist_ok=True)
    datadir = base_dir / "data"
    log_path = base_dir / "mariadb.log"
    init_datadir(datadir, log_path)
    sock = _socket_path(base_dir)
    port = port or free_port()
    argv = [
        str(mariadbd),
        "--no-defaults",
        f"--datadir={datadir}",
        f"--socket={sock}",
        f"--port={port}",
        f"--bind-address={LOOPBACK}",
        f"--pid-file={base_dir / 'mariadb.pid'}",
        "--skip-name-resolve",
        f"--character-set-server={CHARSET}",
        f"--collation-server={COLLATION}",
        *SERVER_TUNING,
        *_root_args(),
    ]
    proc = start_process("mariadb", argv, log_path, die_with_parent=die_with_parent)
    server = MariaDBServer(
        host=LOOPBACK,
        port=port,
        user=user,
        password=password,
        socket=sock,
        datadir=datadir,
        process=proc,
    )
    try:
        wait_until(
            lambda: _ping(server.root_url()),
            timeout=timeout,
            what="waiting for MariaDB to accept connections",
            proc=proc,
        )
        secret = password.replace("\\", "\\\\").replace("'", "''")
        stmts: list[str] = []
        for host in _USER_HOSTS:
            stmts.append(f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{secret}'")
            stmts.append(f"ALTER USER '{user}'@'{host}' IDENTIFIED BY '{secret}'")
        for db in databases:
            stmts += _database_sql(db, user, grant=True)
        _admin(server.root_url(), stmts)
        wait_until(
            lambda: _ping(server.url(databases[0] if databases else "")),
            timeout=30,
            what=f"logging in as {user} over TCP",
            proc=proc,
        )
    except BaseException:
        proc.stop()
        raise
    return server
