"""Dataset stores: one interface over a local directory (embedded default) and the S3 API.

Layout under the store root: ``<id>/rows.jsonl`` then ``<id>/manifest.json``. The manifest is
written last, so a version without one is an interrupted write and is invisible; writing the
same id again is a no-op (versions are immutable). Reading verifies the content hash.
"""

from __future__ import annotations

import json
import os
import tempfile
from abc import ABC, abstractmethod
from io import BytesIO
from pathlib import Path
from urllib.parse import urlparse

from textops.data.dataset import Dataset, Manifest, decode_and_verify, encode_rows
from textops.errors import (
    CorruptDatasetError,
    DatasetNotFoundError,
    StoreUnavailableError,
    TextopsError,
)
from textops.settings import Settings

ROWS = "rows.jsonl"
MANIFEST = "manifest.json"


class BlobStore(ABC):
    """The few byte operations a dataset store needs."""

    uri: str

    @abstractmethod
    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when absent."""

    @abstractmethod
    def write(self, key: str, payload: bytes) -> None: ...

    @abstractmethod
    def children(self) -> list[str]:
        """Names of the top-level 'folders' under the root."""


class LocalBlobs(BlobStore):
    """A directory; writes go through a temporary file and an atomic rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = str(root)

    def read(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def write(self, key: str, payload: bytes) -> None:
        path = self.root / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(tmp, path)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot write to dataset store {self.uri}: {exc}") from exc

    def children(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())


class S3Blobs(BlobStore):
    """A bucket and prefix on any S3 API server, through the ``minio`` client."""

    def __init__(self, uri: str, endpoint: str, access_key: str | None, secret_key: str | None):
        from minio import Minio

        parsed = urlparse(uri)
        self.uri = uri
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        endpoint_url = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
        self.client = Minio(
            endpoint_url.netloc,
            access_key=access_key,
            secret_key=secret_key,
            secure=endpoint_url.scheme == "https",
        )
        self._bucket_checked = False

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        from minio.error import S3Error
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                return None
            raise StoreUnavailableError(
                f"{what} on {self.uri} failed: {exc.code}: {exc.message}"
            ) from exc
        except (HTTPError, OSError) as exc:
            raise StoreUnavailableError(
                f"dataset store {self.uri} is unreachable at {self.client._base_url.host}: "
                f"{type(exc).__name__}"
            ) from exc

    def read(self, key: str) -> bytes | None:
        response = self._call("read", self.client.get_object, self.bucket, self._key(key))
        if response is None:
            return None
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def write(self, key: str, payload: bytes) -> None:
        if not self._bucket_checked:
            if not self._call("bucket check", self.client.bucket_exists, self.bucket):
                self._call("bucket creation", self.client.make_bucket, self.bucket)
            self._bucket_checked = True
        self._call(
            "write",
            self.client.put_object,
            self.bucket,
            self._key(key),
            BytesIO(payload),
            len(payload),
            content_type="application/octet-stream",
        )

    def children(self) -> list[str]:
        prefix = f"{self.prefix}/" if self.prefix else ""
        objects = self._call("list", self.client.list_objects, self.bucket, prefix=prefix)
        if objects is None:
            return []
        names = self._call("list", lambda: [o.object_name for o in objects])
        return sorted({name[len(prefix) :].split("/", 1)[0] for name in names or [] if name})


class DatasetStore:
    """Put, get and list dataset versions over any :class:`BlobStore`."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    @property
    def uri(self) -> str:
        return self.blobs.uri

    def put(self, dataset: Dataset) -> bool:
        """Store a version; False when that content is already stored (nothing is rewritten)."""
        if self.blobs.read(f"{dataset.id}/{MANIFEST}") is not None:
            return False
        self.blobs.write(f"{dataset.id}/{ROWS}", encode_rows(dataset))
        manifest = json.dumps(dataset.manifest.to_dict(), ensure_ascii=False, indent=2)
        self.blobs.write(f"{dataset.id}/{MANIFEST}", manifest.encode("utf-8"))
        return True

    def manifest(self, dataset_id: str) -> Manifest:
        resolved = self.resolve(dataset_id)
        return self._manifest(resolved)

    def get(self, dataset_id: str) -> Dataset:
        """Read and verify a version; ``latest`` and unique id prefixes are accepted."""
        manifest = self.manifest(dataset_id)
        payload = self.blobs.read(f"{manifest.id}/{ROWS}")
        if payload is None:
            raise CorruptDatasetError(f"dataset {manifest.id} has a manifest but no rows")
        return decode_and_verify(manifest, payload)

    def list(self) -> list[Manifest]:
        """All complete versions, oldest first."""
        found = []
        for name in self.blobs.children():
            raw = self.blobs.read(f"{name}/{MANIFEST}")
            if raw is not None:
                found.append(_parse_manifest(name, raw))
        return sorted(found, key=lambda m: (m.created_at, m.id))

    def resolve(self, dataset_id: str) -> str:
        if dataset_id == "latest":
            versions = self.list()
            if not versions:
                raise DatasetNotFoundError(
                    f"no dataset versions in {self.uri}: run 'textops data snapshot' first"
                )
            return versions[-1].id
        if self.blobs.read(f"{dataset_id}/{MANIFEST}") is not None:
            return dataset_id
        matches = [n for n in self.blobs.children() if n.startswith(dataset_id)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise DatasetNotFoundError(f"dataset id {dataset_id!r} is ambiguous: {matches}")
        raise DatasetNotFoundError(f"no dataset {dataset_id!r} in {self.uri}")

    def _manifest(self, dataset_id: str) -> Manifest:
        raw = self.blobs.read(f"{dataset_id}/{MANIFEST}")
        if raw is None:
            raise DatasetNotFoundError(f"no dataset {dataset_id!r} in {self.uri}")
        return _parse_manifest(dataset_id, raw)


def _parse_manifest(name: str, raw: bytes) -> Manifest:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptDatasetError(f"dataset {name}: manifest is not JSON ({exc})") from exc
    manifest = Manifest.from_dict(data)
    if manifest.id != name:
        raise CorruptDatasetError(f"dataset {name}: manifest names {manifest.id}")
    return manifest


def open_store(uri: str, settings: Settings) -> DatasetStore:
    """``s3://bucket/prefix`` goes to the S3 endpoint in the settings; anything else is a path."""
    if uri.startswith("s3://"):
        if not urlparse(uri).netloc:
            raise TextopsError(f"dataset URI {uri!r} names no bucket (use s3://bucket/prefix)")
        if not settings.s3_endpoint:
            raise TextopsError(
                f"dataset URI {uri} needs an S3 endpoint: set TEXTOPS_S3_ENDPOINT or "
                "MLFLOW_S3_ENDPOINT_URL"
            )
        return DatasetStore(
            S3Blobs(uri, settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key)
        )
    path = Path(uri.removeprefix("file://")).expanduser()
    return DatasetStore(LocalBlobs(path))
