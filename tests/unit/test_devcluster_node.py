"""The real node's decisions, without a node: its files, its volumes, its clean-up parsing."""

from __future__ import annotations

import io
import json
import tarfile
import tomllib
from pathlib import Path
from typing import Any

from textops.devcluster import node, node_config, pause, provisioner
from textops.devcluster.node_config import NodePaths

PATHS = NodePaths(Path("/work/cluster/node"), Path("/cache/node-v1/containerd"))


def test_containerd_config_has_the_settings_this_machine_needs() -> None:
    config = tomllib.loads(
        node_config.containerd_toml(PATHS, runc=Path("/t/runc"), cni_bin=Path("/t/cni"))
    )
    assert config["version"] == 3
    assert config["grpc"]["address"] == str(PATHS.containerd_socket)
    plugins = config["plugins"]
    runtime = plugins["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True  # root lacks CAP_SYS_RESOURCE here
    assert runtime["netns_mounts_under_state_dir"] is True
    runc = runtime["containerd"]["runtimes"]["runc"]["options"]
    assert runc == {"BinaryName": "/t/runc", "Root": str(PATHS.runc_root), "SystemdCgroup": False}
    assert runtime["cni"]["bin_dirs"] == ["/t/cni"]
    images = plugins["io.containerd.cri.v1.images"]
    assert images["pinned_images"]["sandbox"] == node_config.PAUSE_IMAGE
    # nothing of containerd's is written outside the node's folder but the image store
    assert config["state"].startswith(str(PATHS.root))
    assert config["root"] == str(PATHS.image_store)
    assert plugins["io.containerd.internal.v1.opt"]["path"].startswith(str(PATHS.root))


def test_kubelet_and_kube_proxy_listen_only_on_the_node_address_or_loopback() -> None:
    kubelet = json.loads(
        node_config.kubelet_yaml(
            PATHS,
            ca_file=Path("/ca"),
            port=10250,
            healthz_port=10248,
            tls_cert=Path("/c"),
            tls_key=Path("/k"),
        )
    )
    assert kubelet["address"] == node_config.NODE_IP
    assert kubelet["healthzBindAddress"] == "127.0.0.1" and kubelet["readOnlyPort"] == 0
    assert kubelet["authentication"]["anonymous"]["enabled"] is False
    assert kubelet["authorization"]["mode"] == "Webhook"
    assert (kubelet["cgroupDriver"], kubelet["failCgroupV1"]) == ("cgroupfs", False)
    assert kubelet["clusterDNS"] == [node_config.NODE_IP]
    assert kubelet["imageGCHighThresholdPercent"] == 100  # imported images are never collected
    proxy = json.loads(
        node_config.kube_proxy_yaml(kubeconfig=Path("/k"), healthz_port=1, metrics_port=2)
    )
    assert proxy["nodePortAddresses"] == [f"{node_config.NODE_IP}/32"]
    assert proxy["healthzBindAddress"].startswith("127.0.0.1:")
    assert proxy["conntrack"]["maxPerCore"] == 0


def test_pods_get_a_masqueraded_bridge_at_the_host_mtu_and_only_cluster_dns() -> None:
    conf = json.loads(node_config.cni_conflist(PATHS, mtu=1400))
    bridge = conf["plugins"][0]
    assert bridge["bridge"] == node_config.CNI_BRIDGE and bridge["mtu"] == 1400
    assert bridge["ipMasq"] and bridge["hairpinMode"] and bridge["isGateway"]
    assert bridge["ipam"]["dataDir"].startswith(str(PATHS.root))
    # Docker's FORWARD policy DROP must not cut pods off each other
    assert {"type": "firewall", "backend": "iptables"} in conf["plugins"]
    corefile = node_config.corefile(kubeconfig=Path("/k"), health_port=8181)
    assert f"bind {node_config.NODE_IP}" in corefile
    assert "forward" not in corefile  # names outside the cluster are refused


CLAIM: dict[str, Any] = {
    "metadata": {"name": "data", "namespace": "ns", "uid": "0123456789abcdef"},
    "spec": {
        "storageClassName": "standard",
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "2Gi"}},
    },
    "status": {"phase": "Pending"},
}


def test_a_pending_claim_of_the_class_gets_a_volume_bound_to_it_and_the_node() -> None:
    root = Path("/v")
    volume = provisioner.volume_for_claim(CLAIM, root, "n1")
    assert volume is not None
    assert volume["metadata"]["name"] == "pvc-0123456789abcdef"
    spec = volume["spec"]
    assert spec["claimRef"]["uid"] == "0123456789abcdef"
    assert spec["capacity"] == {"storage": "2Gi"}
    assert spec["hostPath"]["path"] == "/v/ns_data_01234567"
    terms = spec["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["n1"]
    other = {**CLAIM, "spec": {**CLAIM["spec"], "storageClassName": "fast"}}
    bound = {**CLAIM, "spec": {**CLAIM["spec"], "volumeName": "pv-1"}}
    assert provisioner.volume_for_claim(other, root, "n1") is None
    assert provisioner.volume_for_claim(bound, root, "n1") is None


def test_only_a_released_volume_of_ours_under_the_root_is_deleted() -> None:
    root = Path("/v")
    volume = provisioner.volume_for_claim(CLAIM, root, "n1")
    assert volume is not None
    assert provisioner.folder_to_delete(volume, root) is None  # not released yet
    released = {**volume, "status": {"phase": "Released"}}
    assert provisioner.folder_to_delete(released, root) == Path("/v/ns_data_01234567")
    elsewhere = json.loads(json.dumps(released))
    elsewhere["metadata"]["annotations"][provisioner.PATH_ANNOTATION] = "/etc"
    assert provisioner.folder_to_delete(elsewhere, root) is None
    foreign = json.loads(json.dumps(released))
    foreign["metadata"]["annotations"][provisioner.PROVISIONED_BY] = "someone/else"
    assert provisioner.folder_to_delete(foreign, root) is None


IPTABLES_SAVE = """*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:KUBE-SERVICES - [0:0]
:CNI-abc123 - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -s 10.244.0.5/32 -m comment --comment "name: \\"pods\\" id: \\"x\\"" -j CNI-abc123
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A KUBE-SERVICES -j RETURN
COMMIT
*filter
:FORWARD DROP [0:0]
:KUBE-FORWARD - [0:0]
-A FORWARD -j KUBE-FORWARD
COMMIT
"""


def test_clean_up_finds_our_chains_and_the_jumps_to_them_and_nothing_of_docker() -> None:
    assert node.our_chains(IPTABLES_SAVE) == {
        "nat": ["KUBE-SERVICES", "CNI-abc123"],
        "filter": ["KUBE-FORWARD"],
    }
    jumps = node.rules_jumping_to_ours(IPTABLES_SAVE)
    assert [(table, spec[0], spec[-1]) for table, spec in jumps] == [
        ("nat", "PREROUTING", "KUBE-SERVICES"),
        ("nat", "POSTROUTING", "CNI-abc123"),
        ("filter", "FORWARD", "KUBE-FORWARD"),
    ]
    # a comment with quotes survives the round trip to argv
    argv = node._unquote(jumps[1][1])
    assert argv[argv.index("--comment") + 1] == 'name: "pods" id: "x"'


def test_the_pause_image_is_a_loadable_docker_save_archive() -> None:
    data = pause.image_tar(b"\x7fELF-binary")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        (manifest,) = json.load(tar.extractfile("manifest.json"))
        config = json.load(tar.extractfile(manifest["Config"]))
        layer = tar.extractfile(manifest["Layers"][0]).read()
    assert manifest["RepoTags"] == ["textops/pause:1"]
    assert config["config"]["Entrypoint"] == ["/pause"]
    with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
        assert inner.getnames() == ["pause"] and inner.getmember("pause").mode == 0o755
    assert set(names) == {"manifest.json", manifest["Config"], manifest["Layers"][0]}
