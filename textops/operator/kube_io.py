"""The operator's reads and writes of Kubernetes objects (I/O, kubernetes client).

Every write is idempotent: creation treats 409 (already exists) as done, the Deployment is
replaced only when the hash of its wanted body changed (stored as an annotation, so the
comparison survives restarts and ignores the defaults the API server adds), status is written
as a merge patch of what changed. Events are posted here too, with the operator as source.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from textops.contracts import Annotation
from textops.operator.spec import GROUP, KIND, PLURAL, VERSION, format_time

COMPONENT = "textops-operator"
Body = dict[str, Any]


class Kube:
    """Typed API groups over one ``ApiClient``; responses come back as plain dicts."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)

    def _plain(self, obj: Any) -> Body:
        plain: Body = self.api.sanitize_for_serialization(obj)
        return plain

    # ------------------------------------------------------------------ the custom resource

    def read_mdep(self, namespace: str, name: str) -> Body | None:
        try:
            body: Body = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )  # type: ignore[assignment]
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return body

    def list_mdeps(self, namespaces: Sequence[str]) -> list[tuple[str, str]]:
        """(namespace, name) of every ModelDeployment in `namespaces` (all when empty)."""
        if namespaces:
            items = []
            for namespace in namespaces:
                listed = self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL
                )
                items += listed["items"]  # type: ignore[index]
        else:
            listed = self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
            items = listed["items"]  # type: ignore[index]
        return [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items]

    def patch_status(self, namespace: str, name: str, status: Body) -> Body | None:
        """Merge-patch ``status`` (``None`` values delete keys); the resource as written.

        None when there was nothing to write or the resource is gone.
        """
        if not status:
            return None
        try:
            written: Body = self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {"status": status},
                _content_type="application/merge-patch+json",
            )  # type: ignore[assignment]
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to report on
                raise
            return None
        return written

    # ------------------------------------------------------------------ children

    def read_deployment(self, namespace: str, name: str) -> Body | None:
        try:
            return self._plain(self.apps.read_namespaced_deployment(name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def apply_deployment(self, body: Body, live: Body | None) -> bool:
        """Create the Deployment, or replace it when its wanted body changed; True if written."""
        body = with_hash(body)
        meta = body["metadata"]
        if live is None:
            return self._create(
                lambda: self.apps.create_namespaced_deployment(meta["namespace"], _any(body))
            )
        wanted = meta["annotations"][Annotation.SPEC_HASH]
        if (live["metadata"].get("annotations") or {}).get(Annotation.SPEC_HASH) == wanted:
            return False
        meta["resourceVersion"] = live["metadata"]["resourceVersion"]
        self.apps.replace_namespaced_deployment(meta["name"], meta["namespace"], _any(body))
        return True

    def ensure_service(self, body: Body, check_first: bool) -> bool:
        """Create the Service unless it exists; True if created.

        ``check_first`` (a resource already served, every upkeep pass): read before creating.
        A create refused with 409 is no cheap no-op: the API server allocates the ClusterIP
        before it finds the name taken, and 200 resources did that every 10 s
        (benchmarks/README.md). A new resource creates at once.
        """
        meta = body["metadata"]
        if check_first:
            try:
                self.core.read_namespaced_service(meta["name"], meta["namespace"])
                return False
            except ApiException as exc:
                if exc.status != 404:
                    raise
        return self._create(
            lambda: self.core.create_namespaced_service(meta["namespace"], _any(body))
        )

    def create_job(self, body: Body) -> bool:
        """Create the Job; False when a Job of that name already exists (a repeated decision)."""
        meta = body["metadata"]
        return self._create(lambda: self.batch.create_namespaced_job(meta["namespace"], _any(body)))

    def list_jobs(self, namespace: str, selector: Mapping[str, str]) -> list[Body]:
        text = ",".join(f"{k}={v}" for k, v in selector.items())
        jobs = self.batch.list_namespaced_job(namespace, label_selector=text).items
        return [self._plain(j) for j in jobs]

    @staticmethod
    def _create(create: Any) -> bool:
        try:
            create()
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    # ------------------------------------------------------------------ events

    def post_event(self, mdep: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about the ModelDeployment (what ``kubectl describe`` shows)."""
        meta = mdep["metadata"]
        now = datetime.now(UTC)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:12]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": format_time(now),
            "lastTimestamp": format_time(now),
            "count": 1,
        }
        self.core.create_namespaced_event(meta["namespace"], _any(event))


def _any(body: object) -> Any:
    """The client accepts plain dicts (as the API's JSON) where its stubs name model classes."""
    return body


def with_hash(body: Body) -> Body:
    """``body`` with the hash of its content as an annotation (the change detector)."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    meta = dict(body["metadata"])
    meta["annotations"] = {**(meta.get("annotations") or {}), Annotation.SPEC_HASH: digest}
    return {**body, "metadata": meta}
