"""Pytest plugin: real MariaDB, S3 (versitygw) and MLflow servers for integration tests.

Session fixtures start each server once, lazily (a run that uses none starts none), as a
child process on a free loopback port with its data and log under pytest's temporary
directory, and stop it by process group at session end, also when tests fail; if pytest
itself is killed, the kernel sends the servers SIGTERM (parent-death signal).  When a test
that used a server fails, the tail of that server's log is attached to the report.

Fixtures:
  mariadb        MariaDBServer: host, port, user, password, url(db) -> SQLAlchemy URL,
                 create_database(name); databases `mlflow` and `textops_labels` exist (utf8mb4)
  s3_server      S3Server: endpoint ("127.0.0.1:PORT"), endpoint_url, access_key,
                 secret_key, region, client() -> minio.Minio, env(); buckets
                 `mlflow-artifacts` and `datasets` exist
  mlflow_server  MlflowServer: tracking_uri, client_env(); artifacts proxied to s3_server
  mlflow_env     (function) sets MLFLOW_TRACKING_URI, short MLflow client retries, the
                 MLFLOW_S3_ENDPOINT_URL/AWS_* variables, TEXTOPS_DATA_URI and
                 TEXTOPS_LABEL_DB via monkeypatch; returns the dict it set
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from textops.devservers import (
    MLFLOW_DB,
    MariaDBServer,
    MlflowServer,
    S3Server,
    stack_env,
    start_mariadb,
    start_mlflow,
    start_s3,
)
from textops.processes import ManagedProcess, log_tail

SERVER_FIXTURES = ("mariadb", "s3_server", "mlflow_server")
_started = pytest.StashKey[dict[str, ManagedProcess]]()


def _registry(config: pytest.Config) -> dict[str, ManagedProcess]:
    return config.stash.setdefault(_started, {})


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Parent directory of the session's server data and logs."""
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def mariadb(request: pytest.FixtureRequest, servers_dir: Path) -> Iterator[MariaDBServer]:
    server = start_mariadb(servers_dir / "mariadb", die_with_parent=True)
    _registry(request.config)["mariadb"] = server.process
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(request: pytest.FixtureRequest, servers_dir: Path) -> Iterator[S3Server]:
    server = start_s3(servers_dir / "s3", die_with_parent=True)
    _registry(request.config)["s3_server"] = server.process
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_server(
    request: pytest.FixtureRequest, servers_dir: Path, mariadb: MariaDBServer, s3_server: S3Server
) -> Iterator[MlflowServer]:
    server = start_mlflow(
        servers_dir / "mlflow",
        backend_store_uri=mariadb.url(MLFLOW_DB),
        s3=s3_server,
        die_with_parent=True,
    )
    _registry(request.config)["mlflow_server"] = server.process
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_env(
    monkeypatch: pytest.MonkeyPatch,
    mariadb: MariaDBServer,
    s3_server: S3Server,
    mlflow_server: MlflowServer,
) -> dict[str, str]:
    """Point MLflow (and S3/label-store clients) at the session's servers for one test."""
    env = stack_env(mariadb, s3_server, mlflow_server)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # A tracking URI set in-process by earlier code would shadow the variable; clear it for
    # this test (monkeypatch restores it).  raising=False: only a private detail of MLflow.
    monkeypatch.setattr(
        "mlflow.tracking._tracking_service.utils._tracking_uri", None, raising=False
    )
    return env


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the log tail of every server a failed test used."""
    report = yield
    if report.failed:
        used = set(getattr(item, "fixturenames", ()))
        for name, proc in _registry(item.config).items():
            if name in used:
                tail = log_tail(proc.log_path, 80)
                report.sections.append((f"{name} log: {proc.log_path}", tail or "(empty)"))
    return report


def pytest_unconfigure(config: pytest.Config) -> None:
    """Safety net: stop any server whose fixture teardown did not run (e.g. interrupted)."""
    for proc in _registry(config).values():
        if proc.alive():
            proc.stop()
