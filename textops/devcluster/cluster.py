"""Bring up (and down) a real, single-machine Kubernetes cluster: control plane, a real node.

One job: wire etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the real node
(containerd, kubelet, kube-proxy, CoreDNS, a volume provisioner: `node.py`) and, where a test
needs more nodes than one machine has, kwok's fake nodes, with freshly made certificates;
wait until each one is really ready (etcd /health, apiserver /readyz, component /healthz,
nodes Ready, the default ServiceAccount), and stop all of them again, leaving nothing behind.
Real binaries mean RBAC, admission, CRD validation, garbage collection, the Job/Deployment
controllers and the pods themselves behave as in a production cluster.

State (pids, ports, paths) is kept in `<workdir>/state.json`, so another process
(`python -m textops.devcluster down`) can stop a cluster it did not start.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from textops.devservers.ports import free_ports
from textops.processes import ManagedProcess, log_tail, start_process, wait_until

from . import node as node_mod
from . import node_config
from . import pki as pki_mod
from . import tools as tools_mod
from .node_config import NodePaths
from .pause import ensure_pause_tar

STATE_FILE = "state.json"
STAGES_DIR = Path(__file__).with_name("stages")
NODE_ANNOTATION = "kwok.x-k8s.io/node"
# Order matters: started in this order, stopped in the reverse one.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODE_COMPONENTS = ("containerd", "kubelet", "kube-proxy", "coredns", "provisioner")
# A real node that the tests of kwok's era must not use: only pods tolerating it land there.
REAL_NODE_TAINT = {"key": "textops.io/real-node", "value": "true", "effect": "NoSchedule"}


class ClusterStartError(RuntimeError):
    """The cluster did not become ready; the message carries every component's log tail."""


class ClusterStopError(RuntimeError):
    """Something of the cluster is still on the machine after stopping; the message says what."""


def node_paths(workdir: Path) -> NodePaths:
    """The real node's folders: its own under the cluster's, the image store in the cache."""
    return NodePaths(workdir / "node", tools_mod.cache_root().parent / "node-v1" / "containerd")


def default_workdir() -> Path:
    """`$TEXTOPS_HOME/cluster`, TEXTOPS_HOME defaulting to ./.textops."""
    return Path(os.environ.get("TEXTOPS_HOME") or ".textops").resolve() / "cluster"


# --------------------------------------------------------------------------- kubeconfig


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_kubeconfig(
    path: Path,
    server: str,
    ca_pem: bytes,
    user: str,
    *,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    token: str | None = None,
) -> None:
    """Write a self-contained kubeconfig (CA and credentials embedded) for one identity.

    Give either a client certificate and key, or a bearer token (e.g. a ServiceAccount's).
    """
    # JSON strings are valid YAML scalars, so json.dumps quotes safely without a YAML library.
    q = json.dumps
    if token is not None:
        credentials = f"    token: {q(token)}\n"
    elif cert_pem is not None and key_pem is not None:
        credentials = (
            f"    client-certificate-data: {_b64(cert_pem)}\n    client-key-data: {_b64(key_pem)}\n"
        )
    else:
        raise ValueError("write_kubeconfig needs cert_pem and key_pem, or token")
    text = f"""apiVersion: v1
kind: Config
clusters:
- name: textops-dev
  cluster:
    server: {q(server)}
    certificate-authority-data: {_b64(ca_pem)}
users:
- name: {q(user)}
  user:
{credentials}contexts:
- name: textops-dev
  context:
    cluster: textops-dev
    user: {q(user)}
    namespace: default
current-context: textops-dev
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)


# --------------------------------------------------------------------------- API access


class Api:
    """Minimal JSON client for the apiserver (admin client certificate), stdlib only."""

    def __init__(self, server: str, pki: pki_mod.Pki) -> None:
        self.server = server
        self.ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        self.ctx.load_cert_chain(str(pki.path("admin")), str(pki.path("admin", "key")))

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10.0
    ) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def get_json(self, path: str) -> dict[str, Any] | None:
        code, body = self.request("GET", path)
        if code != 200:
            return None
        result: dict[str, Any] = json.loads(body)
        return result


def _https_ok(url: str) -> bool:
    """True when a component's self-signed /healthz answers 200 ("ok")."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:
        return int(resp.status) == 200


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return int(resp.status) == 200


# --------------------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    """A running dev cluster. `stop()` ends every process it started."""

    workdir: Path
    server: str
    kubeconfig: Path
    tools: tools_mod.Tools
    daemons: list[ManagedProcess] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    real_node: bool = False

    @property
    def node_paths(self) -> NodePaths:
        return node_paths(self.workdir)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def logs(self, max_bytes: int = 8000) -> dict[str, str]:
        """The end of every component's log, by component name."""
        return {d.name: log_tail(d.log_path, max_bytes=max_bytes) for d in self.daemons}

    def logs_text(self, max_bytes: int = 8000) -> str:
        parts = [
            f"===== {name} ({self.log_dir}/{name}.log) =====\n{text}"
            for name, text in self.logs(max_bytes).items()
        ]
        return "\n".join(parts)

    def env(self) -> dict[str, str]:
        """os.environ plus KUBECONFIG and our kubectl/helm first on PATH."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        path = [str(p) for p in self.tools.bin_dirs]
        env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
        return env

    def stop(self) -> list[str]:
        """Stop every daemon (reverse start order), take the real node down and forget the
        state file; return what is left on the machine (empty: nothing)."""
        for daemon in reversed(self.daemons):
            daemon.stop()
        left = node_mod.teardown(self.node_paths, self.tools) if self.real_node else []
        (self.workdir / STATE_FILE).unlink(missing_ok=True)
        return left

    def save_state(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "nodes": self.nodes,
            "real_node": self.real_node,
            "processes": [d.to_dict() for d in self.daemons],
        }
        tmp = self.workdir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.workdir / STATE_FILE)


def _argv(
    tools: tools_mod.Tools,
    wd: Path,
    pki: pki_mod.Pki,
    ports: dict[str, int],
    address: str,
    real_node: bool,
) -> dict[str, list[str]]:
    kc = wd / "kubeconfigs"
    if real_node:  # pods reach the API through the `kubernetes` Service: keep its endpoints
        node_access = [
            f"--kubelet-client-certificate={pki.path('apiserver-kubelet-client')}",
            f"--kubelet-client-key={pki.path('apiserver-kubelet-client', 'key')}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ]
    else:
        # The `kubernetes` Service would point at 127.0.0.1, which Endpoints reject: with
        # kwok's nodes nothing in-cluster needs it, so do not reconcile it.
        node_access = ["--endpoint-reconciler-type=none"]
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    return {
        "etcd": [
            str(tools.etcd),
            "--name=textops-dev",
            f"--data-dir={wd / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=textops-dev={peer_url}",
            "--initial-cluster-state=new",
            # Throw-away test data: no fsync keeps etcd fast on a busy CI disk.
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(tools.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            f"--bind-address={address}",
            f"--advertise-address={address}",
            f"--secure-port={ports['apiserver']}",
            f"--cert-dir={wd / 'apiserver-certs'}",
            f"--tls-cert-file={pki.path('apiserver')}",
            f"--tls-private-key-file={pki.path('apiserver', 'key')}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=Node,RBAC",
            f"--requestheader-client-ca-file={pki.path('front-proxy-ca')}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.path('front-proxy-client')}",
            f"--proxy-client-key-file={pki.path('front-proxy-client', 'key')}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.path('sa', 'pub')}",
            f"--service-account-signing-key-file={pki.path('sa', 'key')}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=true",
            *node_access,
            "--profiling=false",
        ],
        "kube-controller-manager": [
            str(tools.kube_controller_manager),
            f"--kubeconfig={kc / 'controller-manager.conf'}",
            f"--authentication-kubeconfig={kc / 'controller-manager.conf'}",
            f"--authorization-kubeconfig={kc / 'controller-manager.conf'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['controller-manager']}",
            f"--cert-dir={wd / 'controller-manager-certs'}",
            f"--service-account-private-key-file={pki.path('sa', 'key')}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            "--use-service-account-credentials=true",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--leader-elect=false",
            "--profiling=false",
        ],
        "kube-scheduler": [
            str(tools.kube_scheduler),
            f"--kubeconfig={kc / 'scheduler.conf'}",
            f"--authentication-kubeconfig={kc / 'scheduler.conf'}",
            f"--authorization-kubeconfig={kc / 'scheduler.conf'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['scheduler']}",
            f"--cert-dir={wd / 'scheduler-certs'}",
            "--leader-elect=false",
            "--profiling=false",
        ],
        "kwok": [
            str(tools.kwok),
            f"--kubeconfig={kc / 'kwok.conf'}",
            f"--config={wd / 'kwok.yaml'}",
            f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}=fake",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            "--node-lease-duration-seconds=40",
        ],
    }


def _write_kwok_config(path: Path) -> None:
    """Concatenate the vendored kwok Stage files into one multi-document config."""
    docs = [p.read_text() for p in sorted(STAGES_DIR.glob("*.yaml"))]
    path.write_text("\n---\n".join(docs))


def _node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
    }


def _node_ready(api: Api, name: str) -> bool:
    node = api.get_json(f"/api/v1/nodes/{name}")
    if not node:
        return False
    conditions = node.get("status", {}).get("conditions", [])
    taints = node.get("spec", {}).get("taints", [])
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    # The node-lifecycle controller removes the not-ready taint once it has seen Ready:
    # until then the scheduler would not place pods there.
    return ready and not any(t.get("key") == "node.kubernetes.io/not-ready" for t in taints)


@dataclass(frozen=True)
class RealNode:
    """Whether and how to join the real node: the images (each its Docker tags) to import
    into its containerd, and whether to taint it so that only pods tolerating REAL_NODE_TAINT
    land there."""

    images: tuple[tuple[str, ...], ...] = ()
    tainted: bool = False


def start_cluster(
    workdir: Path,
    nodes: int = 1,
    *,
    real_node: RealNode | None = None,
    tools: tools_mod.Tools | None = None,
    die_with_parent: bool = False,
    timeout: float = 180.0,
) -> Cluster:
    """Start a fresh cluster in `workdir` and return once it is ready for workloads.

    `nodes` kwok fake nodes; `real_node` joins the machine's real node (one per machine).
    `workdir` is wiped of a previous cluster's data first (a running one there is stopped).
    With `die_with_parent`, the daemons are killed by the kernel if this process dies, which
    the test fixture uses; `make cluster-up` leaves them running for `cluster-down`.
    On failure everything started is stopped and ClusterStartError carries the logs.
    """
    tools = tools or tools_mod.find()
    workdir = workdir.resolve()
    try:
        return _start_once(workdir, nodes, real_node, tools, die_with_parent, timeout)
    except ClusterStartError as exc:
        # Ports are picked free but only bound later by the daemons: another process may
        # take one in between. That race is retried once with new ports; nothing else is.
        if "address already in use" not in str(exc):
            raise
    return _start_once(workdir, nodes, real_node, tools, die_with_parent, timeout)


def _claim_the_node(tools: tools_mod.Tools) -> None:
    """Refuse a second real node on this machine; clear what a dead one left behind."""
    running = [b.name for b in (tools.kubelet, tools.containerd) if node_mod.processes_running(b)]
    if running:
        raise ClusterStartError(
            f"a dev cluster's real node is already running on this machine ({', '.join(running)}"
            " processes): stop it first (make cluster-down, or end the test session using it)"
        )
    if node_mod.link_exists(node_config.NODE_BRIDGE):
        node_mod.teardown(node_paths(Path("/nonexistent")), tools)


def _start_once(
    workdir: Path,
    nodes: int,
    real_node: RealNode | None,
    tools: tools_mod.Tools,
    die_with_parent: bool,
    timeout: float,
) -> Cluster:
    stop_cluster(workdir)
    if real_node is not None:
        _claim_the_node(tools)
    for sub in (
        "etcd",
        "logs",
        "pki",
        "kubeconfigs",
        "apiserver-certs",
        "controller-manager-certs",
        "scheduler-certs",
        "kwok-workdir",
        "node",
    ):
        shutil.rmtree(workdir / sub, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)

    address = node_config.NODE_IP if real_node is not None else "127.0.0.1"
    pki = pki_mod.write_pki(
        workdir / "pki", node_ip=node_config.NODE_IP if real_node is not None else None
    )
    names = (
        "etcd",
        "etcd-peer",
        "apiserver",
        "controller-manager",
        "scheduler",
        "kwok",
        "kubelet",
        "kubelet-healthz",
        "proxy-healthz",
        "proxy-metrics",
        "dns-health",
    )
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    server = f"https://{address}:{ports['apiserver']}"
    ca_pem = pki.ca_cert.read_bytes()
    kubeconfig = workdir / "kubeconfig"
    kubeconfigs = workdir / "kubeconfigs"
    for stem, cn, _groups in pki_mod.CLIENTS:
        target = kubeconfig if stem == "admin" else kubeconfigs / f"{stem}.conf"
        write_kubeconfig(
            target,
            server,
            ca_pem,
            cn,
            cert_pem=pki.path(stem).read_bytes(),
            key_pem=pki.path(stem, "key").read_bytes(),
        )
    _write_kwok_config(workdir / "kwok.yaml")

    cluster = Cluster(
        workdir=workdir,
        server=server,
        kubeconfig=kubeconfig,
        tools=tools,
        real_node=real_node is not None,
    )
    argv = _argv(tools, workdir, pki, ports, address, real_node is not None)
    env = dict(os.environ)
    # kwok would otherwise read and write ~/.kwok.
    env["KWOK_WORKDIR"] = str(workdir / "kwok-workdir")
    api = Api(server, pki)
    paths = cluster.node_paths
    if real_node is not None:
        node_mod.make_node_network()  # before the apiserver binds the node address
        node_mod.write_config(
            paths,
            tools,
            kubelet_port=ports["kubelet"],
            kubelet_healthz_port=ports["kubelet-healthz"],
            proxy_healthz_port=ports["proxy-healthz"],
            proxy_metrics_port=ports["proxy-metrics"],
            dns_health_port=ports["dns-health"],
            ca_file=pki.ca_cert,
            pki_dir=pki.dir,
            kubeconfigs=kubeconfigs,
            taints=[REAL_NODE_TAINT] if real_node.tainted else None,
        )
        argv.update(node_mod.argv(paths, tools, kubeconfigs, sys.executable))

    def launch(name: str, daemon_env: dict[str, str] | None = None) -> ManagedProcess:
        daemon = start_process(
            name,
            argv[name],
            cluster.log_dir / f"{name}.log",
            env=daemon_env or env,
            cwd=workdir,
            die_with_parent=die_with_parent,
            # a daemon must not outlive a killed test run by a graceful shutdown of its own
            death_signal=signal.SIGKILL,
        )
        cluster.daemons.append(daemon)
        cluster.save_state()
        return daemon

    try:
        etcd = launch("etcd")
        wait_until(
            lambda: (
                json.loads(_read(f"http://127.0.0.1:{ports['etcd']}/health")).get("health")
                == "true"
            ),
            timeout=timeout,
            what="waiting for etcd /health",
            proc=etcd,
        )

        apiserver = launch("kube-apiserver")
        wait_until(
            lambda: api.request("GET", "/readyz", timeout=5)[0] == 200,
            timeout=timeout,
            what="waiting for kube-apiserver /readyz",
            proc=apiserver,
        )

        launch("kube-controller-manager")
        launch("kube-scheduler")
        if nodes:
            launch("kwok")

        for name, port in (
            ("kube-controller-manager", ports["controller-manager"]),
            ("kube-scheduler", ports["scheduler"]),
        ):
            wait_until(
                partial(_https_ok, f"https://127.0.0.1:{port}/healthz"),
                timeout=timeout,
                what=f"waiting for {name} /healthz",
                proc=cluster.daemons,
            )
        if nodes:
            wait_until(
                lambda: _http_ok(f"http://127.0.0.1:{ports['kwok']}/healthz"),
                timeout=timeout,
                what="waiting for kwok /healthz",
                proc=cluster.daemons,
            )

        for i in range(nodes):
            name = f"kwok-node-{i}"
            code, body = api.request("POST", "/api/v1/nodes", _node(name))
            if code not in (201, 409):
                raise ClusterStartError(f"creating node {name}: HTTP {code}: {body[:500]!r}")
            cluster.nodes.append(name)
        cluster.save_state()
        if real_node is not None:
            _start_node(cluster, real_node, launch, ports, timeout)
        for name in cluster.nodes:
            wait_until(
                partial(_node_ready, api, name),
                timeout=timeout,
                what=f"waiting for node {name} Ready",
                proc=cluster.daemons,
            )
        # Token and ServiceAccount controllers are working once `default` exists.
        wait_until(
            lambda: api.get_json("/api/v1/namespaces/default/serviceaccounts/default"),
            timeout=timeout,
            what="waiting for ServiceAccount default/default",
            proc=cluster.daemons,
        )
    except BaseException as exc:
        logs = cluster.logs_text()
        cluster.stop()
        if isinstance(exc, Exception):
            raise ClusterStartError(f"dev cluster did not start: {exc}\n{logs}") from exc
        raise
    return cluster


def _start_node(
    cluster: Cluster,
    real_node: RealNode,
    launch: Callable[..., ManagedProcess],
    ports: dict[str, int],
    timeout: float,
) -> None:
    """containerd (with the images), kubelet, kube-proxy, CoreDNS, the provisioner."""
    tools, paths = cluster.tools, cluster.node_paths
    launch("containerd", node_mod.daemon_env(tools))
    node_mod.wait_containerd(paths, tools, timeout, cluster.daemons)
    node_mod.remove_stale_containers(paths, tools)
    node_mod.import_tar(paths, tools, ensure_pause_tar(tools_mod.cache_root() / "pause"))
    node_mod.import_from_docker(paths, tools, real_node.images, keep_only="docker.io/textops/")
    launch("kubelet", node_mod.daemon_env(tools))
    launch("kube-proxy")
    launch("coredns")
    launch("provisioner")
    cluster.nodes.append(node_config.NODE_NAME)
    cluster.save_state()
    wait_until(
        partial(_http_ok, f"http://127.0.0.1:{ports['proxy-healthz']}/healthz"),
        timeout=timeout,
        what="waiting for kube-proxy /healthz",
        proc=cluster.daemons,
    )
    wait_until(
        partial(_http_ok, f"http://127.0.0.1:{ports['dns-health']}/health"),
        timeout=timeout,
        what="waiting for CoreDNS /health",
        proc=cluster.daemons,
    )


def _read(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


# --------------------------------------------------------------------------- state file


def load_state(workdir: Path) -> dict[str, Any] | None:
    path = workdir / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state


def recorded_processes(state: dict[str, Any]) -> list[ManagedProcess]:
    """The daemons a state file records, also one written before `textops.processes`."""
    return [ManagedProcess.from_dict(p) for p in state.get("processes", [])]


def stop_cluster(workdir: Path) -> list[str]:
    """Stop the cluster recorded in `workdir/state.json`; return the names stopped."""
    state = load_state(workdir)
    stopped: list[str] = []
    if state is None:
        return stopped
    for proc in reversed(recorded_processes(state)):
        if proc.stop():
            stopped.append(proc.name)
    if state.get("real_node"):
        left = node_mod.teardown(node_paths(workdir), tools_mod.find())
        if left:
            raise ClusterStopError("the real node left behind: " + "; ".join(left))
    (workdir / STATE_FILE).unlink(missing_ok=True)
    return stopped


def status(workdir: Path) -> dict[str, Any]:
    """Which recorded components are running, plus server and kubeconfig paths."""
    state = load_state(workdir)
    if state is None:
        return {"running": False, "processes": {}}
    procs = {proc.name: proc.alive() for proc in recorded_processes(state)}
    return {
        "running": bool(procs) and all(procs.values()),
        "server": state.get("server"),
        "kubeconfig": state.get("kubeconfig"),
        "nodes": state.get("nodes", []),
        "processes": procs,
    }
