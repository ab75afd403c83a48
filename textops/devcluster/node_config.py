"""The real node's configuration files, as text (pure: paths and addresses in, files out).

Why a module of its own: every setting here was needed to make kubelet, containerd, CNI,
kube-proxy and CoreDNS run on these machines (cgroup v1 without systemd, root without
CAP_SYS_RESOURCE, no registry, no route out for pods), and each is a decision worth a test,
not a line buried in start-up code. `node.py` writes these files and starts the daemons.

The node owns a small private network it creates itself (never the machine's own interface):
a bridge `textops0` holding the node address, which the apiserver advertises and kubelet,
CoreDNS and the NodePorts listen on, and the CNI bridge `textops-cni0` for the pods.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "textops-node"
NODE_BRIDGE = "textops0"
NODE_IP = "10.250.0.1"
CNI_BRIDGE = "textops-cni0"
CNI_NETWORK = "textops-pods"
POD_CIDR = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DOMAIN = "cluster.local"
PAUSE_IMAGE = "docker.io/textops/pause:1"
# The MTU of the machine's interface (eth0 is 1400 here): pods must not exceed it.
DEFAULT_MTU = 1400


@dataclass(frozen=True)
class NodePaths:
    """Where the node keeps its state: all under the cluster's work folder, except the image
    store (containerd's root), which outlives clusters so that an unchanged image is imported
    once per machine, not once per cluster (one real node per machine uses it at a time)."""

    root: Path
    image_store: Path

    @property
    def containerd(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.containerd / "config.toml"

    @property
    def runc_root(self) -> Path:
        return self.containerd / "runc"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_data_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.kubelet / "config.yaml"

    @property
    def resolv_conf(self) -> Path:
        return self.kubelet / "resolv.conf"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy.yaml"

    @property
    def corefile(self) -> Path:
        return self.root / "Corefile"

    @property
    def volumes(self) -> Path:
        """The local-path provisioner's volumes."""
        return self.root / "volumes"


def containerd_toml(paths: NodePaths, *, runc: Path, cni_bin: Path) -> str:
    """containerd 2.x configuration (version 3) for the CRI plugin kubelet talks to."""

    def q(value: object) -> str:
        return json.dumps(str(value))  # a TOML basic string is a JSON string

    runtime = "plugins.'io.containerd.cri.v1.runtime'"
    return f"""version = 3
root = {q(paths.image_store)}
state = {q(paths.containerd / "state")}

[grpc]
  address = {q(paths.containerd_socket)}

[ttrpc]
  address = {q(paths.containerd / "containerd.sock.ttrpc")}

[plugins.'io.containerd.internal.v1.opt']
  path = {q(paths.containerd / "opt")}

[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    # built here (pause.py): no registry is reachable
    sandbox = {q(PAUSE_IMAGE)}

[{runtime}]
  # root lacks CAP_SYS_RESOURCE here: without this every pod fails in runc init
  # ("failed to update /proc/self/oom_score_adj: Permission denied")
  restrict_oom_score_adj = true
  # network namespaces under our state folder, not /var/run/netns
  netns_mounts_under_state_dir = true
  [{runtime}.containerd]
    default_runtime_name = 'runc'
    [{runtime}.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [{runtime}.containerd.runtimes.runc.options]
        BinaryName = {q(runc)}
        Root = {q(paths.runc_root)}
        SystemdCgroup = false
  [{runtime}.cni]
    bin_dirs = [{q(cni_bin)}]
    conf_dir = {q(paths.cni_conf_dir)}
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
"""


def cni_conflist(paths: NodePaths, mtu: int = DEFAULT_MTU) -> str:
    """A bridge network for the pods, masqueraded, with hairpin (a pod reaches itself through
    its own Service), host ports, and forwarding allowed whatever the FORWARD policy."""
    conf = {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": CNI_BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "mtu": mtu,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(paths.cni_data_dir),
                    "ranges": [[{"subnet": POD_CIDR, "gateway": POD_GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            # Docker on the same machine sets the FORWARD policy to DROP: without these
            # rules (chain CNI-FORWARD) pods could not reach each other, nor Services
            {"type": "firewall", "backend": "iptables"},
        ],
    }
    return json.dumps(conf, indent=2)


def kubelet_yaml(
    paths: NodePaths,
    *,
    ca_file: Path,
    port: int,
    healthz_port: int,
    tls_cert: Path,
    tls_key: Path,
    taints: list[dict[str, str]] | None = None,
) -> str:
    """KubeletConfiguration for cgroup v1 without systemd, behind x509 + webhook auth."""
    config: dict[str, object] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "tlsCertFile": str(tls_cert),
        "tlsPrivateKeyFile": str(tls_key),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        # the init process is not systemd and the hierarchy is cgroup v1
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "clusterDNS": [NODE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        # the pods' resolv.conf: the cluster's DNS only, no search domains of the machine
        "resolvConf": str(paths.resolv_conf),
        # images are imported, never pulled: never collect them
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # a busy CI disk must not evict the suite's pods
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "serializeImagePulls": False,
        "maxPods": 110,
        "registerWithTaints": taints or [],
        "staticPodPath": "",
        "shutdownGracePeriod": "0s",
    }
    return json.dumps(config, indent=2)  # JSON is YAML


def kube_proxy_yaml(*, kubeconfig: Path, healthz_port: int, metrics_port: int) -> str:
    """kube-proxy in iptables mode; NodePorts only on the node's own address."""
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "clusterCIDR": POD_CIDR,
        "nodePortAddresses": [f"{NODE_IP}/32"],
        # kube-proxy may not set nf_conntrack_max here: leave the kernel's value
        "conntrack": {"maxPerCore": 0, "min": 0},
    }
    return json.dumps(config, indent=2)


def corefile(*, kubeconfig: Path, health_port: int) -> str:
    """CoreDNS answering the cluster domain from the API, on the node address.

    No other zone is served (no forwarder): names outside the cluster get REFUSED, so a pod
    cannot resolve, or reach, anything beyond the cluster by name."""
    return f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {NODE_IP}
    errors
    health 127.0.0.1:{health_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
"""


def resolv_conf() -> str:
    return f"nameserver {NODE_IP}\noptions ndots:5\n"
