"""Real backing servers for integration tests and local development.

The project's MLOps code runs against an MLflow tracking server whose backend store is
MariaDB and whose artifact store is an S3 API.  Mocks hide the failures that matter
(collations, proxied artifact uploads, S3 signing), so tests start the real servers as local
child processes on free loopback ports: `tests/plugins/servers.py` does it per test session,
`python -m textops.devservers up|down|status|env` does it for people.  See docs/servers.md.
"""

from __future__ import annotations

from textops.devservers.mariadb import LABELS_DB, MLFLOW_DB, MariaDBServer, start_mariadb
from textops.devservers.mlflow_server import MlflowServer, start_mlflow
from textops.devservers.s3 import DATASETS_BUCKET, MLFLOW_BUCKET, S3Server, start_s3
from textops.processes import MissingBinaryError, StartupError

DATA_URI = f"s3://{DATASETS_BUCKET}/reviews"


def stack_env(db: MariaDBServer, s3: S3Server, mlflow: MlflowServer) -> dict[str, str]:
    """The variables a process needs to use all three servers."""
    return {
        **mlflow.client_env(),
        **s3.env(),
        "TEXTOPS_DATA_URI": DATA_URI,
        "TEXTOPS_LABEL_DB": db.url(LABELS_DB),
    }


__all__ = [
    "DATASETS_BUCKET",
    "DATA_URI",
    "LABELS_DB",
    "MLFLOW_BUCKET",
    "MLFLOW_DB",
    "MariaDBServer",
    "MissingBinaryError",
    "MlflowServer",
    "S3Server",
    "StartupError",
    "stack_env",
    "start_mariadb",
    "start_mlflow",
    "start_s3",
]
