"""A local-path volume provisioner for the dev cluster's real node (what kind ships).

Why: the chart's MySQL, MinIO and Prometheus claim PersistentVolumes; without a default
StorageClass and something that provisions it, `helm install --wait` waits forever on
Pending claims. This one makes, for each Pending claim of its StorageClass, a folder under
the node's volume root (mode 0777: pods run as many uids and hostPath gets no fsGroup) and a
hostPath PersistentVolume bound to the claim and to the node; when the claim is deleted the
PV turns Released, and the folder and the PV are removed (reclaim policy Delete).

The decisions are pure functions of the API objects; `run()` polls the API and applies them.
Restart-safe: every state is in the API (a PV's name derives from its claim's uid), so a
second pass or a restarted provisioner creates nothing twice ("already exists" is fine).
Run by the dev cluster as `python -m textops.devcluster.provisioner`.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STORAGE_CLASS = "standard"
PROVISIONER = "textops.io/local-path"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
PATH_ANNOTATION = "textops.io/local-path"
POLL_S = 0.5


def storage_class() -> dict[str, Any]:
    """The default StorageClass; claims bind at once (Immediate), PVs follow the node."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def volume_name(claim: Mapping[str, Any]) -> str:
    return f"pvc-{claim['metadata']['uid']}"


def volume_for_claim(claim: Mapping[str, Any], root: Path, node: str) -> dict[str, Any] | None:
    """The PV to create for `claim`, or None when the claim is not ours to provision."""
    meta, spec = claim["metadata"], claim.get("spec", {})
    if spec.get("storageClassName") != STORAGE_CLASS or spec.get("volumeName"):
        return None
    if claim.get("status", {}).get("phase", "Pending") != "Pending" or meta.get(
        "deletionTimestamp"
    ):
        return None
    folder = root / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
    storage = spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name(claim),
            "annotations": {PROVISIONED_BY: PROVISIONER, PATH_ANNOTATION: str(folder)},
        },
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "hostPath": {"path": str(folder), "type": "DirectoryOrCreate"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [node],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }


def folder_to_delete(volume: Mapping[str, Any], root: Path) -> Path | None:
    """The folder of a PV of ours whose claim is gone (Released, reclaim Delete), else None.

    Only a folder under `root` is ever returned, whatever the annotation says."""
    annotations = volume["metadata"].get("annotations") or {}
    if annotations.get(PROVISIONED_BY) != PROVISIONER:
        return None
    if volume.get("status", {}).get("phase") not in ("Released", "Failed"):
        return None
    if volume.get("spec", {}).get("persistentVolumeReclaimPolicy") != "Delete":
        return None
    folder = Path(annotations.get(PATH_ANNOTATION, ""))
    if folder.parent != root:
        return None
    return folder


# --------------------------------------------------------------------------- I/O


def run(kubeconfig: Path, root: Path, node: str, *, once: bool = False) -> None:
    """Provision and clean up until killed (or one pass with `once`)."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    core = client.CoreV1Api(api_client)
    storage = client.StorageV1Api(api_client)
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(ApiException):  # 409: it exists (a restart)
        storage.create_storage_class(storage_class())  # type: ignore[arg-type]
    while True:
        try:
            _pass(core, root, node)
        except ApiException as exc:  # the API restarting: try again on the next pass
            print(f"provisioner: {exc.status} {exc.reason}", file=sys.stderr, flush=True)
        if once:
            return
        time.sleep(POLL_S)


def _pass(core: Any, root: Path, node: str) -> None:
    from kubernetes.client.exceptions import ApiException

    serialize = core.api_client.sanitize_for_serialization
    for claim in core.list_persistent_volume_claim_for_all_namespaces().items:
        body = volume_for_claim(serialize(claim), root, node)
        if body is None:
            continue
        new_folder = Path(body["spec"]["hostPath"]["path"])
        new_folder.mkdir(parents=True, exist_ok=True)
        new_folder.chmod(0o777)
        try:
            core.create_persistent_volume(body)
            print(f"provisioner: {body['metadata']['name']} at {new_folder}", flush=True)
        except ApiException as exc:
            if exc.status != 409:
                raise
    for volume in core.list_persistent_volume().items:
        data = serialize(volume)
        folder = folder_to_delete(data, root)
        if folder is None:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        try:
            core.delete_persistent_volume(data["metadata"]["name"])
            print(f"provisioner: deleted {data['metadata']['name']} and {folder}", flush=True)
        except ApiException as exc:
            if exc.status != 404:
                raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m textops.devcluster.provisioner")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True, help="folder holding the volumes")
    parser.add_argument("--node", required=True, help="the node the volumes live on")
    args = parser.parse_args(argv)
    run(args.kubeconfig, args.root.resolve(), args.node)
    return 0


if __name__ == "__main__":
    sys.exit(main())
