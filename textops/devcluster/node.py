"""The dev cluster's real node: containerd + runc, CNI, kubelet, kube-proxy, CoreDNS and a
volume provisioner, started beside the control plane, and taken down without leftovers.

One job: the node's I/O. What the files say is decided in `node_config.py`; this module makes
the node's network (a bridge with the node address, never the machine's interface), writes
the files, starts the daemons through `textops.processes`, imports the images (no registry can be
reached), and on the way down stops every container, unmounts, and removes the devices,
iptables chains, cgroups and runtime files the node made. `leftovers()` says what remains,
so `make cluster-down` and the test session can prove that nothing does.

One real node per machine: its network names and addresses are fixed (node_config.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from textops.processes import ManagedProcess, wait_until

from . import node_config
from .node_config import CNI_BRIDGE, NODE_BRIDGE, NODE_IP, NodePaths
from .tools import Tools

CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBEPODS = "kubepods"
CHAIN_PREFIXES = ("KUBE-", "CNI-")
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw")
SHIM_SOCKETS = Path("/run/containerd/s")
CNI_CACHE = Path("/var/lib/cni/results")
# kubelet makes its device-plugin socket here whatever its --root-dir
DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
IMPORT_TIMEOUT_S = 600


class NodeError(RuntimeError):
    """The node could not be set up or taken down; the message says what and why."""


def sh(argv: Sequence[str], *, check: bool = True, timeout: float = 60) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise NodeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


# --------------------------------------------------------------------------- network


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def make_node_network() -> None:
    """The node bridge with the node address; forwarding and bridged traffic through iptables.

    The kernel here has no dummy interfaces, so the node address lives on a bridge of its own.
    """
    if not link_exists(NODE_BRIDGE):
        sh(["ip", "link", "add", NODE_BRIDGE, "type", "bridge"])
    addresses = sh(["ip", "-o", "-4", "addr", "show", "dev", NODE_BRIDGE])
    if f" {NODE_IP}/" not in addresses:
        sh(["ip", "addr", "add", f"{NODE_IP}/32", "dev", NODE_BRIDGE])
    sh(["ip", "link", "set", NODE_BRIDGE, "up"])
    for key, value in (
        ("net/ipv4/ip_forward", "1"),
        ("net/bridge/bridge-nf-call-iptables", "1"),
    ):
        path = Path("/proc/sys") / key
        if not path.exists():
            raise NodeError(f"/proc/sys/{key} is missing: the kernel lacks what pods need")
        if path.read_text().strip() != value:
            path.write_text(value)


def interface_mtu(default: int = node_config.DEFAULT_MTU) -> int:
    """The MTU of the interface of the default route (pods must not send bigger packets)."""
    try:
        route = sh(["ip", "-o", "route", "show", "default"]).split()
        device = route[route.index("dev") + 1]
        return int(Path(f"/sys/class/net/{device}/mtu").read_text())
    except (NodeError, ValueError, IndexError, OSError):
        return default


# --------------------------------------------------------------------------- files


def write_config(
    paths: NodePaths,
    tools: Tools,
    *,
    kubelet_port: int,
    kubelet_healthz_port: int,
    proxy_healthz_port: int,
    proxy_metrics_port: int,
    dns_health_port: int,
    ca_file: Path,
    pki_dir: Path,
    kubeconfigs: Path,
    taints: list[dict[str, str]] | None,
) -> None:
    for folder in (
        paths.containerd,
        paths.cni_conf_dir,
        paths.cni_data_dir,
        paths.kubelet,
        paths.volumes,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    paths.containerd_config.write_text(
        node_config.containerd_toml(paths, runc=tools.runc, cni_bin=tools.cni_bin_dir)
    )
    (paths.cni_conf_dir / "10-textops.conflist").write_text(
        node_config.cni_conflist(paths, mtu=interface_mtu())
    )
    paths.resolv_conf.write_text(node_config.resolv_conf())
    paths.kubelet_config.write_text(
        node_config.kubelet_yaml(
            paths,
            ca_file=ca_file,
            port=kubelet_port,
            healthz_port=kubelet_healthz_port,
            tls_cert=pki_dir / "kubelet-serving.crt",
            tls_key=pki_dir / "kubelet-serving.key",
            taints=taints,
        )
    )
    paths.kube_proxy_config.write_text(
        node_config.kube_proxy_yaml(
            kubeconfig=kubeconfigs / "kube-proxy.conf",
            healthz_port=proxy_healthz_port,
            metrics_port=proxy_metrics_port,
        )
    )
    paths.corefile.write_text(
        node_config.corefile(kubeconfig=kubeconfigs / "coredns.conf", health_port=dns_health_port)
    )


def argv(paths: NodePaths, tools: Tools, kubeconfigs: Path, python: str) -> dict[str, list[str]]:
    """The node daemons' command lines, by component name."""
    return {
        "containerd": [str(tools.containerd), "--config", str(paths.containerd_config)],
        "kubelet": [
            str(tools.kubelet),
            f"--config={paths.kubelet_config}",
            f"--kubeconfig={kubeconfigs / 'kubelet.conf'}",
            f"--root-dir={paths.kubelet / 'root'}",
            f"--cert-dir={paths.kubelet / 'pki'}",
            f"--hostname-override={node_config.NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        ],
        "kube-proxy": [str(tools.kube_proxy), f"--config={paths.kube_proxy_config}"],
        "coredns": [str(tools.coredns), "-conf", str(paths.corefile)],
        "provisioner": [
            python,
            "-m",
            "textops.devcluster.provisioner",
            f"--kubeconfig={kubeconfigs / 'provisioner.conf'}",
            f"--root={paths.volumes}",
            f"--node={node_config.NODE_NAME}",
        ],
    }


def daemon_env(tools: Tools) -> dict[str, str]:
    """containerd finds its shim and runc on PATH; everything else the usual tools."""
    env = dict(os.environ)
    dirs = [str(tools.containerd.parent), str(tools.runc.parent)]
    env["PATH"] = os.pathsep.join([*dirs, env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")])
    return env


# --------------------------------------------------------------------------- images


def ctr(paths: NodePaths, tools: Tools, *args: str, timeout: float = 60) -> str:
    return sh(ctr_argv(paths, tools, *args), timeout=timeout)


def containerd_ready(paths: NodePaths, tools: Tools) -> bool:
    if not paths.containerd_socket.exists():
        return False
    try:
        ctr(paths, tools, "version", timeout=10)
    except (NodeError, subprocess.TimeoutExpired):
        return False
    return True


def tar_references(tar: Path) -> list[str]:
    """The image references a `docker save` archive names (as containerd stores them)."""
    with tarfile.open(tar) as archive:
        member = archive.extractfile("manifest.json")
        manifest = json.load(member) if member is not None else []
    return [normalised(tag) for entry in manifest for tag in entry.get("RepoTags") or []]


def normalised(reference: str) -> str:
    """`textops/x:1` -> `docker.io/textops/x:1`, the name containerd and kubelet use."""
    first = reference.split("/", 1)[0]
    if "/" not in reference:
        return f"docker.io/library/{reference}"
    if "." in first or ":" in first or first == "localhost":
        return reference
    return f"docker.io/{reference}"


def ctr_argv(paths: NodePaths, tools: Tools, *args: str) -> list[str]:
    return [
        str(tools.ctr),
        "--address",
        str(paths.containerd_socket),
        "--namespace",
        "k8s.io",
        *args,
    ]


IMPORT = ("images", "import", "--local", "--all-platforms", "--discard-unpacked-layers")


def import_tar(paths: NodePaths, tools: Tools, tar: Path) -> None:
    """Load an image archive (`docker save` layout) into the node's containerd."""
    if not set(tar_references(tar)) <= present_images(paths, tools):
        ctr(paths, tools, *IMPORT, str(tar), timeout=IMPORT_TIMEOUT_S)


def present_images(paths: NodePaths, tools: Tools) -> set[str]:
    return set(ctr(paths, tools, "images", "list", "--quiet").split())


def import_from_docker(
    paths: NodePaths, tools: Tools, images: Iterable[Sequence[str]], keep_only: str = ""
) -> list[str]:
    """Stream each image (its tags) from Docker into the node's containerd unless containerd
    has it already (the image store outlives clusters); return the images imported. With
    `keep_only` (a repository prefix such as `docker.io/textops/`), images under it that are
    not among `images` are removed, so the store holds the current builds only."""
    from textops.packaging.images import save_to  # the builder owns Docker

    present = present_images(paths, tools)
    wanted: set[str] = set()
    imported = []
    for tags in images:
        refs = {normalised(tag) for tag in tags}
        wanted |= refs
        if refs <= present:
            continue
        save_to(list(tags), ctr_argv(paths, tools, *IMPORT, "-"))
        imported.append(tags[-1])
    if keep_only:
        wanted.add(node_config.PAUSE_IMAGE)  # the sandbox image lives there too
        stale = sorted(r for r in present - wanted if r.startswith(keep_only))
        if stale:
            ctr(paths, tools, "images", "remove", *stale)
    return imported


def remove_stale_containers(paths: NodePaths, tools: Tools) -> None:
    """Containers a previous node left in the shared image store (a killed run): a new kubelet
    must start from none."""
    for container in ctr(paths, tools, "containers", "list", "--quiet").split():
        with contextlib.suppress(NodeError):
            ctr(paths, tools, "tasks", "delete", "--force", container)
        with contextlib.suppress(NodeError):
            ctr(paths, tools, "containers", "delete", container)


# --------------------------------------------------------------------------- taking it down


def _cgroup_dirs() -> list[Path]:
    """Every kubepods cgroup folder, in every v1 hierarchy (and cgroup2 when unified)."""
    found = []
    for hierarchy in CGROUP_ROOT.iterdir() if CGROUP_ROOT.exists() else []:
        top = hierarchy / KUBEPODS
        if top.is_dir():
            found += [p for p in top.rglob("*") if p.is_dir()] + [top]
    return found


def _cgroup_pids(dirs: Iterable[Path]) -> set[int]:
    pids: set[int] = set()
    for folder in dirs:
        with contextlib.suppress(OSError, ValueError):
            pids |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
    return pids


def processes_running(binary: Path) -> list[int]:
    """Pids whose executable is `binary` (our own build: never another program's process)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if Path(os.readlink(entry / "exe")) == binary:
                pids.append(int(entry.name))
    return pids


def _kill(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def kill_workloads(tools: Tools, timeout: float = 30) -> None:
    """SIGKILL every container process (the kubepods cgroups) and our containerd shims."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = _cgroup_pids(_cgroup_dirs()) | set(processes_running(tools.containerd_shim))
        if not pids:
            return
        _kill(pids)
        time.sleep(0.2)
    raise NodeError("container processes survived SIGKILL for 30 s")


def remove_cgroups() -> None:
    for folder in sorted(_cgroup_dirs(), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


def mounts_under(prefixes: Iterable[Path]) -> list[str]:
    """Mount points under any of `prefixes`, deepest first (mountinfo's 5th field)."""
    roots = [str(p.resolve()) for p in prefixes]
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == r or point.startswith(r + "/") for r in roots):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_all(prefixes: Iterable[Path]) -> None:
    prefixes = list(prefixes)
    for _ in range(5):  # stacked mounts come off one layer per round
        points = mounts_under(prefixes)
        if not points:
            return
        for point in points:
            if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left = mounts_under(prefixes)
    if left:
        raise NodeError(f"could not unmount: {left[:5]}")


def our_chains(save: str) -> dict[str, list[str]]:
    """{table: [chain, ...]} of the KUBE-/CNI- chains in `iptables-save` output (pure)."""
    table, chains = "", dict[str, list[str]]()
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES):
            chains.setdefault(table, []).append(line[1:].split()[0])
    return chains


def rules_jumping_to_ours(save: str) -> list[tuple[str, list[str]]]:
    """(table, rule spec) of rules in other chains that jump to one of ours (pure)."""
    table, rules = "", []
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A "):
            parts = line.split()
            chain = parts[1]
            if chain.startswith(CHAIN_PREFIXES):
                continue
            if "-j" in parts and parts[parts.index("-j") + 1].startswith(CHAIN_PREFIXES):
                rules.append((table, parts[1:]))
    return rules


def remove_chains(tools: Tools) -> None:
    """kube-proxy's own cleanup, then every remaining KUBE-/CNI- chain and the jumps to it."""
    subprocess.run(
        [str(tools.kube_proxy), "--cleanup"], capture_output=True, check=False, timeout=60
    )
    for binary in ("iptables", "ip6tables"):
        if shutil.which(binary) is None:
            continue
        save = sh([f"{binary}-save"], check=False)
        for table, spec in rules_jumping_to_ours(save):
            # the rule's text from iptables-save, quoted words joined as the shell would split
            subprocess.run(
                [binary, "-t", table, "-D", *_unquote(spec)], capture_output=True, check=False
            )
        for table, chains in our_chains(save).items():
            for chain in chains:
                subprocess.run([binary, "-t", table, "-F", chain], capture_output=True, check=False)
            for chain in chains:
                subprocess.run([binary, "-t", table, "-X", chain], capture_output=True, check=False)


def _unquote(spec: list[str]) -> list[str]:
    return shlex.split(" ".join(spec))


def task_ids(paths: NodePaths) -> list[str]:
    """The ids of the containers and sandboxes our containerd ran (its task state folders)."""
    tasks = paths.containerd / "state" / "io.containerd.runtime.v2.task" / "k8s.io"
    return sorted(p.name for p in tasks.iterdir()) if tasks.is_dir() else []


def shim_sockets(paths: NodePaths) -> list[Path]:
    """The shim sockets our tasks used (containerd keeps them outside its state folder)."""
    sockets = []
    tasks = paths.containerd / "state" / "io.containerd.runtime.v2.task"
    for bootstrap in tasks.glob("*/*/bootstrap.json") if tasks.exists() else []:
        with contextlib.suppress(OSError, ValueError, KeyError):
            address = json.loads(bootstrap.read_text())["address"]
            sockets.append(Path(address.removeprefix("unix://")))
    return sockets


def runtime_files(sockets: Iterable[Path], ids: Iterable[str]) -> list[Path]:
    """Files of ours outside the cluster's folder: shim sockets, CNI results of our network
    or of our sandboxes, kubelet's device-plugin socket."""
    found = [s for s in sockets if s.parent == SHIM_SOCKETS and s.exists()]
    ids = list(ids)
    for cached in CNI_CACHE.iterdir() if CNI_CACHE.is_dir() else []:
        if cached.name.startswith(f"{node_config.CNI_NETWORK}-") or any(
            i in cached.name for i in ids
        ):
            found.append(cached)
    socket = DEVICE_PLUGINS / "kubelet.sock"
    if socket.exists() or socket.is_symlink():
        found.append(socket)
    return found


def remove_runtime_files(files: Iterable[Path]) -> None:
    for path in files:
        path.unlink(missing_ok=True)
    # the folders only if nothing else uses them
    for folder in (DEVICE_PLUGINS, DEVICE_PLUGINS.parent, CNI_CACHE, CNI_CACHE.parent):
        with contextlib.suppress(OSError):
            folder.rmdir()


def remove_network() -> None:
    for device in (CNI_BRIDGE, NODE_BRIDGE):
        if link_exists(device):
            sh(["ip", "link", "del", device], check=False)


def leftovers(paths: NodePaths, tools: Tools) -> list[str]:
    """What of a node is still on the machine (empty: nothing): processes, mounts, devices,
    iptables chains, cgroups."""
    found = []
    for binary in (
        tools.containerd,
        tools.containerd_shim,
        tools.kubelet,
        tools.kube_proxy,
        tools.coredns,
    ):
        found += [f"process {pid} ({binary.name})" for pid in processes_running(binary)]
    found += [f"container process {pid}" for pid in _cgroup_pids(_cgroup_dirs())]
    found += [f"mount {point}" for point in mounts_under([paths.root, paths.image_store])]
    found += [f"network device {d}" for d in (NODE_BRIDGE, CNI_BRIDGE) if link_exists(d)]
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool):
            for table, chains in our_chains(sh([f"{tool}-save"], check=False)).items():
                found += [f"{tool} chain {table}/{chain}" for chain in chains]
    found += [f"cgroup {d}" for d in _cgroup_dirs()]
    found += [f"file {f}" for f in runtime_files(shim_sockets(paths), task_ids(paths))]
    return found


def teardown(paths: NodePaths, tools: Tools) -> list[str]:
    """Take down whatever of a node is left (the daemons already stopped, or dead); return
    what could not be removed. Safe to run twice, and on a node that never fully started."""
    files = runtime_files(shim_sockets(paths), task_ids(paths))
    with contextlib.suppress(NodeError):
        kill_workloads(tools)
    _kill(processes_running(tools.containerd))  # a containerd that outlived its group
    with contextlib.suppress(NodeError):
        unmount_all([paths.root, paths.image_store])
    remove_cgroups()
    remove_network()
    remove_chains(tools)
    remove_runtime_files(files)
    # the device-plugin socket and CNI results appear once the daemons are gone: look again
    remove_runtime_files(runtime_files([], task_ids(paths)))
    return leftovers(paths, tools)


def wait_containerd(
    paths: NodePaths, tools: Tools, timeout: float, daemons: Iterable[ManagedProcess]
) -> None:
    """Wait until containerd answers; fail at once, with its log tail, if a daemon exits."""
    wait_until(
        lambda: containerd_ready(paths, tools),
        timeout=timeout,
        what="waiting for containerd",
        proc=daemons,
    )
