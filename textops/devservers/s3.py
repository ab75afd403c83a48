"""A local S3-API server: MLflow's artifact store and the datasets bucket.

Why versitygw: the code under test speaks S3 (MLflow's boto3 artifact repository, the
`minio` client for datasets), so tests need a real S3 server rather than a mock.  MinIO's
Go module is refused by the Go proxy here (AGPL), while versitygw (Apache-2.0) builds from
it and serves the S3 API over a plain directory: bucket = top-level directory, object key =
path below it (metadata in extended attributes, which ext4 has).  It is built by
`scripts/build-s3-tools.sh` (`make servers-tools`) into the versioned tool cache.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textops.devservers.ports import LOOPBACK, free_port
from textops.devservers.tools import find_binary
from textops.processes import ManagedProcess, start_process, wait_until

if TYPE_CHECKING:
    from minio import Minio

VERSITYGW_VERSION = "v1.8.0"
DEFAULT_ACCESS_KEY = "textops"
DEFAULT_SECRET_KEY = "textops-dev-secret"
DEFAULT_REGION = "us-east-1"
MLFLOW_BUCKET = "mlflow-artifacts"
DATASETS_BUCKET = "datasets"
DEFAULT_BUCKETS = (MLFLOW_BUCKET, DATASETS_BUCKET)
HEALTH_PATH = "/health"
BUILD_HINT = "run `make servers-tools` (scripts/build-s3-tools.sh) to build versitygw"


def versitygw_binary() -> Path:
    """The versitygw binary from the tool cache or PATH; MissingBinaryError says how to build."""
    return find_binary("versitygw", tool_dir=f"versitygw-{VERSITYGW_VERSION}", hint=BUILD_HINT)


@dataclass
class S3Server:
    """A running S3 endpoint with one root account."""

    host: str
    port: int
    access_key: str
    secret_key: str
    region: str
    root_dir: Path
    process: ManagedProcess = field(repr=False)

    @property
    def endpoint(self) -> str:
        """`host:port`, the form `minio.Minio` takes."""
        return f"{self.host}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        """`http://host:port`, the form boto3 and MLFLOW_S3_ENDPOINT_URL take."""
        return f"http://{self.endpoint}"

    def client(self) -> Minio:
        """A `minio.Minio` client for this server (plain HTTP)."""
        from minio import Minio

        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            secure=False,
        )

    def ensure_bucket(self, name: str) -> None:
        client = self.client()
        if not client.bucket_exists(name):
            client.make_bucket(name)

    def env(self) -> dict[str, str]:
        """Environment for S3 clients that read the AWS variables (boto3, MLflow)."""
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def log_path(self) -> Path:
        return self.process.log_path

    def stop(self) -> None:
        self.process.stop()

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region": self.region,
            "root_dir": str(self.root_dir),
            "process": self.process.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> S3Server:
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            access_key=str(data["access_key"]),
            secret_key=str(data["secret_key"]),
            region=str(data["region"]),
            root_dir=Path(data["root_dir"]),
            process=ManagedProcess.from_dict(data["process"]),
        )


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return int(resp.status) == 200


def start_s3(
    base_dir: Path,
    *,
    port: int | None = None,
    access_key: str = DEFAULT_ACCESS_KEY,
    secret_key: str = DEFAULT_SECRET_KEY,
    region: str = DEFAULT_REGION,
    buckets: Sequence[str] = DEFAULT_BUCKETS,
    die_with_parent: bool = False,
    timeout: float = 60.0,
) -> S3Server:
    """Start versitygw serving `base_dir/data` on a free loopback port and create `buckets`.

    Ready means: the health endpoint answers and a signed ListBuckets succeeds.  The log is
    `base_dir/s3.log`; objects persist in `base_dir/data` across restarts.
    `die_with_parent`: see `textops.processes.start_process`.
    """
    binary = versitygw_binary()
    root_dir = base_dir / "data"
    root_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [
        str(binary),
        "--port",
        f"{LOOPBACK}:{port}",
        "--region",
        region,
        "--health",
        HEALTH_PATH,
        "posix",
        str(root_dir),
    ]
    # Credentials through the environment keep them out of `ps` and the state file's argv.
    env = {**os.environ, "ROOT_ACCESS_KEY": access_key, "ROOT_SECRET_KEY": secret_key}
    proc = start_process("s3", argv, base_dir / "s3.log", env=env, die_with_parent=die_with_parent)
    server = S3Server(
        host=LOOPBACK,
        port=port,
        access_key=access_key,
        secret_key=secret_key,
        region=region,
        root_dir=root_dir,
        process=proc,
    )
    try:
        wait_until(
            lambda: _healthy(server.endpoint_url + HEALTH_PATH),
            timeout=timeout,
            what="waiting for the S3 health endpoint",
            proc=proc,
        )
        wait_until(
            lambda: server.client().list_buckets() is not None,
            timeout=timeout,
            what="waiting for a signed S3 ListBuckets to succeed",
            proc=proc,
        )
        for bucket in buckets:
            server.ensure_bucket(bucket)
    except BaseException:
        proc.stop()
        raise
    return server
