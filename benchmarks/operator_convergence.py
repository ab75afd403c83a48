"""Operator benchmark: a ModelDeployment through the running operator vs a hand-applied Deployment.

Everything runs for real on this machine: the dev control plane (``textops.devcluster``: etcd,
kube-apiserver, controller-manager, scheduler, kwok nodes that make pods Ready), an ``mlflow
server`` on SQLite with local artifacts (started here; one registered model whose ``champion``
alias every ModelDeployment follows), and the operator as a subprocess (``textops operator``,
cluster-wide, the admin kubeconfig, every other setting at its default: the 10 s timer, Kopf
settings from ``textops/operator/handlers.py``). Prometheus is not started: its URL points at a
closed port, so each resource's once-a-minute reading fails at once (the operator logs it once).

The alternative a user would pick is a hand-wired setup: ``kubectl apply`` of the equivalent
Deployment and Service (the very bodies the operator builds, resolved to the same version).

1. **Sequential** (``--sequential N``, default 50): N times, ``kubectl apply`` one
   ModelDeployment and wait until its Deployment exists pinned to the version; then
   ``kubectl apply`` the equivalent Deployment + Service and wait until it exists. Latency
   is measured from the start of ``kubectl apply`` to the Deployment's ADDED event on a watch
   (both paths pay kubectl's start-up). Also reported: the operator's own share (from the
   ModelDeployment's ADDED event to the Deployment's, on the same watch connection) and the
   time until the ModelDeployment reports ``Ready`` (phase Serving) vs the Deployment
   ``Available``.
2. **Burst** (``--burst M``, default 200): one ``kubectl apply`` of M hand-wired Deployments +
   Services, then one of M ModelDeployments; the time until all Deployments exist, until every
   ModelDeployment has a status phase, and until all are Ready (phase Serving) vs all
   Deployments Available. The baseline burst runs first, so the operator's own load never
   slows the alternative.
3. **Steady state** (``--steady S`` seconds, default 30): the operator's CPU with every
   resource converged (its timers keep following aliases and reading status).

The operator's peak RSS is ``VmHWM`` from ``/proc/PID/status``. Raw results go to
``benchmarks/results/operator.json``.

    python benchmarks/operator_convergence.py [--sequential 50] [--burst 200] [--steady 30]
        [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psutil
import yaml
from kubernetes import client, config, watch
from mlflow.tracking import MlflowClient

import textops
from textops.devcluster import Cluster, find, start_cluster
from textops.devservers.ports import LOOPBACK, free_port
from textops.operator.builders import build_deployment, build_service
from textops.operator.config import load_config
from textops.operator.spec import GROUP, PLURAL, VERSION, ModelDeployment
from textops.processes import ManagedProcess, start_process, wait_until

ROOT = Path(__file__).resolve().parents[1]
CRD_FILE = ROOT / "manifests" / "crd" / "modeldeployments.textops.io.yaml"
NAMESPACE = "bench"
MODEL = "bench-model"
URI_ANNOTATION = f"{GROUP}/model-uri"
T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_s": round(percentile(values, 50), 4),
        "p90_s": round(percentile(values, 90), 4),
        "p99_s": round(percentile(values, 99), 4),
        "mean_s": round(statistics.fmean(values), 4),
        "max_s": round(max(values), 4),
        "samples_s": [round(v, 4) for v in values],
    }


# --------------------------------------------------------------------------- watches


class Seen:
    """First time (perf_counter) each named object reached each state, from watch events."""

    def __init__(self) -> None:
        self.times: dict[str, dict[str, float]] = {}
        self.cond = threading.Condition()

    def mark(self, state: str, name: str) -> None:
        with self.cond:
            bucket = self.times.setdefault(state, {})
            if name not in bucket:
                bucket[name] = time.perf_counter()
                self.cond.notify_all()

    def get(self, state: str, name: str) -> float | None:
        with self.cond:
            return self.times.get(state, {}).get(name)

    def wait(self, state: str, names: list[str], timeout: float) -> float:
        """Block until every name reached ``state``; the latest of their times."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                bucket = self.times.get(state, {})
                missing = [n for n in names if n not in bucket]
                if not missing:
                    return max(bucket[n] for n in names)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(missing)} of {len(names)} never reached {state!r} "
                        f"(first: {missing[:3]})"
                    )
                self.cond.wait(min(left, 1.0))


def _watch_forever(
    stop: threading.Event, list_fn: Callable[..., Any], args: tuple[Any, ...], on: Any
) -> None:
    while not stop.is_set():
        w = watch.Watch()
        try:
            for event in w.stream(list_fn, *args, timeout_seconds=60):
                on(event["object"])
                if stop.is_set():
                    break
        except Exception as exc:  # a dropped watch is re-listed; first-seen times stay
            if not stop.is_set():
                say(f"watch restarted after {type(exc).__name__}: {exc}")
        finally:
            w.stop()


def start_watches(api: client.ApiClient, seen: Seen, version: str) -> threading.Event:
    stop = threading.Event()
    apps, custom = client.AppsV1Api(api), client.CustomObjectsApi(api)
    wanted_uri = f"models:/{MODEL}/{version}"

    def on_deployment(dep: Any) -> None:
        name = dep.metadata.name
        if (dep.metadata.annotations or {}).get(URI_ANNOTATION) == wanted_uri:
            seen.mark("deployment", name)
        if (dep.status.available_replicas or 0) >= 1:
            seen.mark("available", name)

    def on_mdep(obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        seen.mark("mdep", name)
        status = obj.get("status") or {}
        if status.get("phase"):
            seen.mark("phase", name)
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if ready and status.get("phase") == "Serving" and status.get("servingVersion"):
            seen.mark("ready", name)

    for target in (
        (apps.list_namespaced_deployment, (NAMESPACE,), on_deployment),
        (custom.list_namespaced_custom_object, (GROUP, VERSION, NAMESPACE, PLURAL), on_mdep),
    ):
        threading.Thread(target=_watch_forever, args=(stop, *target), daemon=True).start()
    return stop


# --------------------------------------------------------------------------- processes


@contextmanager
def mlflow_server(workdir: Path) -> Iterator[str]:
    """``mlflow server`` on SQLite with local artifacts; yields its tracking URI."""
    port = free_port()
    uri = f"http://{LOOPBACK}:{port}"
    argv = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination",
        str(workdir / "artifacts"),
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = start_process(
        "mlflow", argv, workdir / "mlflow.log", env=env, cwd=workdir, die_with_parent=True
    )
    try:

        def healthy() -> bool:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                return int(response.status) == 200

        wait_until(healthy, timeout=180, what="MLflow /health", proc=proc, interval=0.5)
        yield uri
    finally:
        proc.stop(timeout=20)


def register_champion(uri: str) -> str:
    """One registered version of MODEL (no training: the operator reads only the registry)."""
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
    registry.create_registered_model(MODEL)
    experiment = registry.create_experiment("bench-operator")
    run = registry.create_run(experiment)
    registry.set_terminated(run.info.run_id)
    version = registry.create_model_version(
        MODEL, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    registry.set_registered_model_alias(MODEL, "champion", str(version.version))
    return str(version.version)


@contextmanager
def operator_process(cluster: Cluster, tracking_uri: str, workdir: Path) -> Iterator[int]:
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "TEXTOPS_SERVING_IMAGE": "registry.invalid/textops/serving:bench",  # kwok never pulls
        "TEXTOPS_TRAINING_IMAGE": "registry.invalid/textops/training:bench",
        "TEXTOPS_PROMETHEUS_URL": f"http://{LOOPBACK}:9",  # closed: readings fail at once
    }
    textops_cli = Path(sys.executable).with_name("textops")
    argv = [str(textops_cli), "operator"]
    proc: ManagedProcess = start_process(
        "operator", argv, workdir / "operator.log", env=env, cwd=ROOT, die_with_parent=True
    )
    try:
        yield proc.pid
    finally:
        proc.stop(timeout=30)


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of ``pid`` in MiB, and its CPU seconds so far."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    times = psutil.Process(pid).cpu_times()
    out["cpu_s"] = round(times.user + times.system, 2)
    return out


# --------------------------------------------------------------------------- bodies


def mdep_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"model": {"name": MODEL, "alias": "champion"}},
    }


def hand_wired(name: str, version: str) -> list[dict[str, Any]]:
    """The Deployment and Service the operator would build, as a person would apply them."""
    mdep = ModelDeployment.from_body(mdep_body(name))
    settings = load_config(
        {
            "TEXTOPS_SERVING_IMAGE": "registry.invalid/textops/serving:bench",
            "MLFLOW_TRACKING_URI": "http://mlflow.mlflow.svc:5000",
        }
    )
    return [build_deployment(mdep, settings, version), build_service(mdep, settings)]


def write_docs(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


class Creator:
    """Creates bodies with one API call each, as a controller or a GitOps agent would."""

    def __init__(self, api: client.ApiClient) -> None:
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def one(self, body: Any) -> None:  # the client takes plain dicts as the API's JSON
        kind, ns = body["kind"], body["metadata"]["namespace"]
        if kind == "Deployment":
            self.apps.create_namespaced_deployment(ns, body)
        elif kind == "Service":
            self.core.create_namespaced_service(ns, body)
        else:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)

    def create(self, docs: list[dict[str, Any]]) -> float:
        """Create ``docs`` in order; the perf_counter time it started."""
        started = time.perf_counter()
        for body in docs:
            self.one(body)
        return started

    def create_all(self, docs: list[dict[str, Any]]) -> float:
        """Create ``docs`` from 16 threads at once; the perf_counter time it started."""
        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(self.one, docs))
        return started


# --------------------------------------------------------------------------- the benchmark


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="textops-bench-operator-"))
    files = workdir / "manifests"
    files.mkdir()
    say(f"work folder {workdir}")
    result: dict[str, Any] = {
        "benchmark": "operator",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_start": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {"textops": textops.__version__, "kubernetes": "v1.37.2 (devcluster)"},
        "setup": {
            "sequential": args.sequential,
            "burst": args.burst,
            "steady_s": args.steady,
            "registry": "mlflow server on SQLite, local artifacts, 2 workers",
            "operator": "textops operator (subprocess), cluster-wide, defaults "
            "(TEXTOPS_RECONCILE_SECONDS=10)",
            "baseline": "kubectl apply of the equivalent Deployment + Service",
            "nodes": args.nodes,
        },
    }
    cluster = start_cluster(
        workdir / "cluster", nodes=args.nodes, tools=find(), die_with_parent=True
    )
    try:
        say(f"control plane ready at {cluster.server}")
        kubectl = str(cluster.tools.kubectl)
        kenv = cluster.env()

        def apply(path: Path) -> float:
            """Run ``kubectl apply -f path``; the perf_counter time it was started."""
            started = time.perf_counter()
            subprocess.run(
                [kubectl, "apply", "-f", str(path)],
                env=kenv,
                check=True,
                capture_output=True,
                timeout=600,
            )
            return started

        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        creator = Creator(api)
        subprocess.run(
            [kubectl, "apply", "--server-side", "-f", str(CRD_FILE)], env=kenv, check=True
        )
        subprocess.run(
            [kubectl, "wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}"],
            env=kenv,
            check=True,
        )
        subprocess.run([kubectl, "create", "namespace", NAMESPACE], env=kenv, check=True)
        with mlflow_server(workdir) as tracking_uri:
            version = register_champion(tracking_uri)
            say(f"MLflow at {tracking_uri}: {MODEL} @champion = version {version}")
            seen = Seen()
            stop_watches = start_watches(api, seen, version)
            with operator_process(cluster, tracking_uri, workdir) as pid:
                say(f"operator pid {pid}; warming up")
                apply(write_docs(files / "warmup.yaml", [mdep_body("warmup")]))
                seen.wait("deployment", ["warmup"], timeout=180)
                seen.wait("ready", ["warmup"], timeout=180)
                result["operator_after_warmup"] = proc_status(pid)
                say(f"operator warm: {result['operator_after_warmup']}")
                result["sequential"] = sequential(
                    args.sequential, version, files, seen, apply, creator.create
                )
                result["operator_after_sequential"] = proc_status(pid)
                result["burst"] = burst(args.burst, version, seen, creator.create_all)
                result["operator_after_burst"] = proc_status(pid)
                before = proc_status(pid)
                say(f"steady state for {args.steady}s with every resource converged")
                t = time.perf_counter()
                time.sleep(args.steady)  # a measurement window, not synchronisation
                after = proc_status(pid)
                elapsed = time.perf_counter() - t
                resources = 1 + 2 * args.sequential + args.burst
                result["steady_state"] = {
                    "resources": resources,
                    "seconds": round(elapsed, 1),
                    "operator_cpu_percent_of_one_core": round(
                        100 * (after["cpu_s"] - before["cpu_s"]) / elapsed, 1
                    ),
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                }
                result["operator_process"] = proc_status(pid)
                say(f"operator process: {result['operator_process']}")
            stop_watches.set()
            log = (workdir / "operator.log").read_text(errors="replace")
            result["operator_log"] = {
                "lines": log.count("\n"),
                "errors": sum(1 for line in log.splitlines() if "ERROR" in line),
                "tracebacks": log.count("Traceback"),
            }
    finally:
        cluster.stop()
        result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def sequential(
    n: int,
    version: str,
    files: Path,
    seen: Seen,
    apply: Callable[[Path], float],
    create: Callable[[list[dict[str, Any]]], float],
) -> dict[str, Any]:
    """N rounds of four applies: a ModelDeployment and the hand-wired Deployment + Service, each
    with ``kubectl apply`` and with one API call per object (no kubectl)."""
    say(f"sequential: {n} rounds (operator and hand-wired; kubectl apply and API create)")
    paths = ("operator_kubectl", "hand_kubectl", "operator_api", "hand_api")
    latency: dict[str, list[float]] = {p: [] for p in paths}
    share: list[float] = []
    started: dict[str, dict[str, float]] = {p: {} for p in paths}
    for i in range(n):
        for path in paths:
            name = f"{path.replace('_', '-')}-{i:03d}"
            docs = [mdep_body(name)] if path.startswith("operator") else hand_wired(name, version)
            if path.endswith("kubectl"):
                t = apply(write_docs(files / f"{name}.yaml", docs))
            else:
                t = create(docs)
            done = seen.wait("deployment", [name], timeout=120)
            started[path][name] = t
            latency[path].append(done - t)
            created = seen.get("mdep", name)
            if path.startswith("operator") and created is not None:
                share.append(done - created)
        if (i + 1) % 10 == 0 or i + 1 == n:
            say(
                f"  {i + 1}/{n}: p50 operator {percentile(latency['operator_kubectl'], 50):.3f}s"
                f" / hand-wired {percentile(latency['hand_kubectl'], 50):.3f}s (kubectl), "
                f"{percentile(latency['operator_api'], 50):.3f}s / "
                f"{percentile(latency['hand_api'], 50):.3f}s (API)"
            )
    out: dict[str, Any] = {p: summary(latency[p]) for p in paths}
    out["operator_own_share"] = summary(share)
    for path in paths:
        state = "ready" if path.startswith("operator") else "available"
        names = list(started[path])
        seen.wait(state, names, timeout=300)
        out[f"{path}_to_{state}"] = summary(
            [seen.times[state][m] - started[path][m] for m in names]
        )
    for via in ("kubectl", "api"):
        for q in ("p50", "p99"):
            out[f"ratio_{via}_{q}"] = round(
                out[f"operator_{via}"][f"{q}_s"] / out[f"hand_{via}"][f"{q}_s"], 2
            )
    say(
        "sequential done: "
        + ", ".join(f"{p} p50 {out[p]['p50_s']:.3f}s p99 {out[p]['p99_s']:.3f}s" for p in paths)
    )
    return out


def burst(
    m: int, version: str, seen: Seen, create_all: Callable[[list[dict[str, Any]]], float]
) -> dict[str, Any]:
    """M hand-wired Deployments + Services at once, then M ModelDeployments at once."""
    hands = [f"hand-burst-{i:03d}" for i in range(m)]
    say(f"burst: {m} hand-wired Deployments + Services created at once (16 API clients)")
    t = create_all([doc for name in hands for doc in hand_wired(name, version)])
    created = time.perf_counter() - t
    deployments = seen.wait("deployment", hands, timeout=600) - t
    available = seen.wait("available", hands, timeout=600) - t
    baseline = {
        "create_calls_s": round(created, 2),
        "all_deployments_s": round(deployments, 2),
        "all_available_s": round(available, 2),
    }
    say(f"  hand-wired: {baseline}")

    names = [f"burst-{i:03d}" for i in range(m)]
    say(f"burst: {m} ModelDeployments created at once (16 API clients)")
    t = time.perf_counter()
    progress = threading.Event()

    def report() -> None:
        while not progress.wait(5):
            counts = {s: sum(1 for n in names if seen.get(s, n)) for s in ("deployment", "ready")}
            say(
                f"  ... {time.perf_counter() - t:5.1f}s: {counts['deployment']}/{m} Deployments, "
                f"{counts['ready']}/{m} Ready"
            )

    threading.Thread(target=report, daemon=True).start()
    try:
        create_all([mdep_body(n) for n in names])
        created = time.perf_counter() - t
        deployments = seen.wait("deployment", names, timeout=900) - t
        phases = seen.wait("phase", names, timeout=900) - t
        ready = seen.wait("ready", names, timeout=900) - t
    finally:
        progress.set()
    operator = {
        "create_calls_s": round(created, 2),
        "all_deployments_s": round(deployments, 2),
        "all_status_phase_s": round(phases, 2),
        "all_ready_s": round(ready, 2),
    }
    say(f"  operator: {operator}")
    return {
        "resources": m,
        "hand_wired": baseline,
        "operator": operator,
        "ratio_all_deployments": round(deployments / baseline["all_deployments_s"], 2),
        "ratio_all_ready_vs_available": round(ready / baseline["all_available_s"], 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=50)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--steady", type=float, default=30.0)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/operator.json")
    args = parser.parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    say(f"wrote {args.out}")
    seq, bur = result["sequential"], result["burst"]
    print()
    print("| path | via | p50 | p99 |")
    print("|---|---|---|---|")
    for via in ("kubectl", "api"):
        for who, label in (("operator", "ModelDeployment → operator"), ("hand", "hand-wired")):
            row = seq[f"{who}_{via}"]
            print(f"| {label} | {via} | {row['p50_s']:.3f} s | {row['p99_s']:.3f} s |")
    print(
        f"ratio operator / hand-wired: kubectl x{seq['ratio_kubectl_p50']} (p50) "
        f"x{seq['ratio_kubectl_p99']} (p99); API x{seq['ratio_api_p50']} (p50) "
        f"x{seq['ratio_api_p99']} (p99)"
    )
    print(f"burst of {bur['resources']}: operator {bur['operator']}")
    print(f"           hand-wired {bur['hand_wired']}")
    print(f"steady state: {result['steady_state']}")
    print(f"operator process: {result['operator_process']}")


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        main()
