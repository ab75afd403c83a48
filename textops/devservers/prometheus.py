"""A real Prometheus server scraping given targets, for tests and local dashboards.

Why a real one: the serving metrics are only useful if Prometheus can scrape and query them
(valid exposition, label sets that survive multiprocess mode, counters that increase), and
`promtool check metrics` alone does not prove that.  Prometheus runs as a child process on a
free loopback port with a short scrape interval and its TSDB under `base_dir`; `query()` uses
its HTTP API.  The binary is Debian's `prometheus` (`make system-deps`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textops.devservers.ports import LOOPBACK, free_port
from textops.devservers.tools import find_binary
from textops.processes import ManagedProcess, start_process, wait_until

HINT = "install Debian's prometheus package (make system-deps)"


@dataclass
class PrometheusServer:
    """A running Prometheus; `url` is its HTTP API and UI."""

    host: str
    port: int
    config_path: Path
    process: ManagedProcess = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (`[{"metric": {...}, "value": [ts, "v"]}]`)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # 400/422 carry the reason in the body
            raise RuntimeError(f"Prometheus query {expr!r} failed: {exc.read()!r}") from None
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus query {expr!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health and last error."""
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=10) as response:
            active: list[dict[str, Any]] = json.load(response)["data"]["activeTargets"]
            return active

    def stop(self) -> None:
        self.process.stop(timeout=20)


def scrape_config(
    targets: Sequence[str], job: str = "textops-serving", interval: str = "1s"
) -> str:
    """A minimal prometheus.yml scraping `targets` ("host:port") at `/metrics`.

    JSON is valid YAML, so the file is written with `json.dumps` rather than templated.
    """
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "scrape_interval": interval,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }
    return json.dumps(config, indent=2)


def _ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
        return int(response.status) == 200


def start_prometheus(
    base_dir: Path,
    targets: Sequence[str],
    *,
    interval: str = "1s",
    port: int | None = None,
    die_with_parent: bool = False,
    timeout: float = 60.0,
    config: Mapping[str, Any] | None = None,
) -> PrometheusServer:
    """Start Prometheus scraping `targets` on a free loopback port; wait for `/-/ready`.

    Config, TSDB and log (`prometheus.log`) live in `base_dir`. A whole `config` (the parsed
    prometheus.yml: extra labels, file_sd, rule files) replaces the one built from `targets`.
    """
    binary = find_binary("prometheus", hint=HINT)
    base_dir.mkdir(parents=True, exist_ok=True)
    config_path = base_dir / "prometheus.yml"
    text = json.dumps(config, indent=2) if config else scrape_config(targets, interval=interval)
    config_path.write_text(text, "utf-8")
    port = port or free_port()
    argv = [
        str(binary),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={base_dir / 'data'}",
        f"--web.listen-address={LOOPBACK}:{port}",
        "--log.level=warn",
    ]
    proc = start_process(
        "prometheus",
        argv,
        base_dir / "prometheus.log",
        cwd=base_dir,
        die_with_parent=die_with_parent,
    )
    server = PrometheusServer(host=LOOPBACK, port=port, config_path=config_path, process=proc)
    try:
        wait_until(
            lambda: _ready(server.url),
            timeout=timeout,
            what="waiting for Prometheus /-/ready",
            proc=proc,
        )
    except BaseException:
        proc.stop()
        raise
    return server
