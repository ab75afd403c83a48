"""Serving benchmark: one registered model behind our service, ``mlflow models serve`` and KServe.

The same registered version (trained with the CLI into a TEXTOPS_HOME; ``--home`` reuses one)
is served at once by:

- ``textops``: ``textops serve models:/NAME/VERSION`` (BentoML, this package's service);
- ``textops-nodrift``: the same with ``TEXTOPS_DRIFT_MONITORING=off`` (what monitoring costs);
- ``mlflow``: ``mlflow models serve --env-manager local`` with its defaults (``/invocations``);
- ``kserve``: a KServe ``ModelServer`` with a tiny ``Model`` over the same pyfunc
  (benchmarks/serving_kserve.py) in its own venv under ~/.cache/textops/bench-venvs/,
  created on first use;
- ``in-process``: the classifier's ``predict_proba`` in this process, one text per call and 32
  per call: the upper bound without any HTTP.

One asyncio load generator (aiohttp) in this process drives every server on loopback, one at a
time, alternating in every round (the order rotates), so all share the machine's load. Per
contender and round: (1) saturation: ``--concurrency`` closed-loop clients, one text per request;
(2) latency: open-loop at half of that round's saturation rate, latency counted from the
scheduled send time (no coordinated omission), and again at one ``--common-rate`` for all
(tails at equal offered load: half of a fast server's saturation is a heavier load on the
shared cores than half of a slow one's); (3) batched: ``--batch-clients`` closed-loop
clients with ``--batch`` texts per request. The server's CPU (its whole process tree, from
/proc) is read around every phase, so CPU per request is known even when other work shares the
cores; the load average is recorded next to every phase. Medians over rounds are reported, as
ratios to mlflow, KServe and in-process. Raw results: benchmarks/results/serving.json, plot:
benchmarks/results/serving.png.

    python benchmarks/serving.py [--rounds 3] [--seconds 10] [--home DIR] [--only a,b]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
KSERVE_VERSION = "0.21.0"
KSERVE_VENV = Path.home() / f".cache/textops/bench-venvs/kserve-{KSERVE_VERSION}"
# the model's libraries at the versions of this venv (the pickled classifier needs them)
KSERVE_PACKAGES = [
    f"kserve=={KSERVE_VERSION}",
    "mlflow-skinny==3.17.2",
    "scikit-learn==1.9.1",
    "xgboost-cpu==3.2.0",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "joblib==1.6.0",
    "pandas",
]
MODEL_NAME = "reviews-sentiment"
LOOPBACK = "127.0.0.1"


def say(message: str) -> None:
    print(f"serving-bench: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- set-up


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TEXTOPS_"))}
    env.update(TEXTOPS_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return env


def ensure_model(home: Path) -> tuple[Path, str, Path]:
    """The home holding the champion, its pinned URI and its local artifact folder.

    ``home`` itself when it has a champion, else the folder of the newest demo run under it
    (``textops demo`` trains v1 and v2 into ``home/demo/STAMP``), running the demo first.
    """
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from textops.registry.tracking import connect
    from textops.serving.model_loader import resolve
    from textops.settings import load_settings

    def champion(folder: Path) -> tuple[Any, Any]:
        os.environ["TEXTOPS_HOME"] = str(folder)
        settings = load_settings()
        return settings, resolve(settings, f"models:/{MODEL_NAME}@champion")

    def newest_demo() -> Path | None:
        runs = sorted((home / "demo").glob("*/mlflow.db"))
        return runs[-1].parent if runs else None

    # one registry per process: MLflow keeps the first store it opened, so pick the folder first
    if not (home / "mlflow.db").exists():
        if newest_demo() is None:
            say(f"training a model under {home} (textops demo, about three minutes) ...")
            done = subprocess.run(
                [sys.executable, "-m", "textops", "demo"], env=cli_env(home), cwd=ROOT, check=False
            )
            if done.returncode != 0:
                raise SystemExit("textops demo failed") from None
        run = newest_demo()
        if run is None:
            raise SystemExit(f"no demo run with a registry under {home / 'demo'}")
        home = run
    settings, ref = champion(home)
    client = connect(settings)
    download = client.get_model_version_download_uri(ref.name, str(ref.version))
    local = Path(download.removeprefix("file://"))
    if not (local / "MLmodel").exists():
        raise SystemExit(f"{ref.uri}: no local artifact folder at {local}")
    return home, ref.uri, local


def ensure_kserve_venv() -> Path:
    """KServe's own venv (its pins differ from ours); created on first use."""
    python = KSERVE_VENV / "bin" / "python"
    marker = KSERVE_VENV / ".textops-complete"
    if marker.exists():
        return python
    say(f"creating {KSERVE_VENV} (kserve {KSERVE_VERSION} + the model's libraries) ...")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(KSERVE_VENV)], check=True)
    # sys.executable may itself be a venv: the new venv gets pip either way
    subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", *KSERVE_PACKAGES],
        check=True,
    )
    marker.write_text(" ".join(KSERVE_PACKAGES) + "\n")
    say("kserve venv ready")
    return python


def free_port() -> int:
    from textops.devservers.ports import free_port as pick

    return pick(LOOPBACK)


def corpus_texts(n: int, seed: int = 0) -> list[str]:
    from textops.data.sources import builtin_corpus
    from textops.data.validation import validate_records

    rows = validate_records(builtin_corpus(), drop_duplicates=True).rows
    texts = [r.text for r in rows if len(r.text) <= 2000]
    return random.Random(seed).sample(texts, n)


# --------------------------------------------------------------------------- contenders


@dataclass
class Contender:
    """A server: how to start it and how to ask it about texts."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health: str
    path: str
    body: Callable[[list[str]], dict[str, Any]]
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    tree: list[psutil.Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``NAME:KEY=VALUE,KEY=VALUE`` -> (``textops-NAME``, the service's extra settings)."""
    name, _, settings = text.partition(":")
    pairs = [kv.split("=", 1) for kv in settings.split(",") if kv]
    if not name or any(len(kv) != 2 for kv in pairs):
        raise SystemExit(f"--variant {text!r}: expected NAME:KEY=VALUE[,KEY=VALUE]")
    return f"textops-{name}", dict((k, v) for k, v in pairs)


def contenders(
    home: Path,
    uri: str,
    model_dir: Path,
    kserve_python: Path | None,
    variants: list[tuple[str, dict[str, str]]] | None = None,
) -> list[Contender]:
    out = []
    ours = [("textops", {}), ("textops-nodrift", {"TEXTOPS_DRIFT_MONITORING": "off"})]
    for name, extra in ours + (variants or []):
        port = free_port()
        out.append(
            Contender(
                name,
                [sys.executable, "-m", "textops", "serve", uri, "--port", str(port)],
                cli_env(home, **extra),
                "/readyz",
                "/predict",
                lambda texts: {"texts": texts},
                port,
            )
        )
    port = free_port()
    out.append(
        Contender(
            "mlflow",
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                uri,
                "--env-manager",
                "local",
                "-h",
                LOOPBACK,
                "-p",
                str(port),
            ],
            # mlflow starts ``uvicorn`` by name: this venv's bin first on PATH
            cli_env(
                home,
                MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
                PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            ),
            "/health",
            "/invocations",
            lambda texts: {"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}},
            port,
        )
    )
    if kserve_python is not None:
        port = free_port()
        out.append(
            Contender(
                "kserve",
                [
                    str(kserve_python),
                    str(Path(__file__).with_name("serving_kserve.py")),
                    "--model_dir",
                    str(model_dir),
                    "--http_port",
                    str(port),
                    "--grpc_port",
                    str(free_port()),
                    "--enable_grpc",
                    "false",
                ],
                {**cli_env(home), "PYTHONPATH": str(ROOT)},
                "/v1/models/textops",
                "/v1/models/textops:predict",
                lambda texts: {"instances": texts},
                port,
            )
        )
    return out


def start(c: Contender, logs: Path) -> None:
    c.log = logs / f"{c.name}.log"
    with open(c.log, "wb") as log:
        c.proc = subprocess.Popen(c.argv, env=c.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(c: Contender, timeout: float = 300.0) -> None:
    assert c.proc is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.proc.poll() is not None:
            raise SystemExit(f"{c.name} exited:\n{_tail(c.log)}")
        try:
            with urllib.request.urlopen(c.url + c.health, timeout=2) as response:
                if response.status == 200:
                    c.tree = process_tree(c.proc.pid)
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"{c.name} was not ready after {timeout:.0f}s:\n{_tail(c.log)}")


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:])


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(c: Contender) -> float:
    total = 0.0
    for p in c.tree:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def stop(c: Contender) -> None:
    """SIGTERM the server, then kill whatever of its tree (by pid) is left."""
    if c.proc is None:
        return
    tree = c.tree
    if c.proc.poll() is None:
        tree = tree or process_tree(c.proc.pid)
        c.proc.send_signal(signal.SIGTERM)
        try:
            c.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()
    _gone, alive = psutil.wait_procs(tree, timeout=10)
    for p in alive:
        p.kill()


# --------------------------------------------------------------------------- load


@dataclass
class Phase:
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_s: float = 0.0
    loadavg: float = 0.0
    texts_per_request: int = 1

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def q(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else None

        return {
            "requests": self.ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
            "requests_per_s": round(self.ok / self.seconds, 1) if self.seconds else 0.0,
            "texts_per_s": round(self.ok * self.texts_per_request / self.seconds, 1)
            if self.seconds
            else 0.0,
            "p50_ms": q(0.50),
            "p99_ms": q(0.99),
            "cpu_ms_per_request": round(self.cpu_s / self.ok * 1000, 3) if self.ok else None,
            "loadavg_1m": round(self.loadavg, 2),
            "texts_per_request": self.texts_per_request,
        }


async def _post(
    http: aiohttp.ClientSession, url: str, payload: bytes, phase: Phase, since: float
) -> None:
    try:
        async with http.post(
            url, data=payload, headers={"Content-Type": "application/json"}
        ) as response:
            await response.read()
            if response.status == 200:
                phase.ok += 1
                phase.latencies.append(time.perf_counter() - since)
            else:
                phase.error(str(response.status))
    except (TimeoutError, aiohttp.ClientError) as exc:
        phase.error(type(exc).__name__)


def _payloads(c: Contender, texts: list[str], per_request: int, n: int = 512) -> list[bytes]:
    rng = random.Random(per_request)
    return [
        json.dumps(c.body(rng.sample(texts, per_request)), ensure_ascii=False).encode()
        for _ in range(n)
    ]


async def closed_loop(
    c: Contender, payloads: list[bytes], clients: int, seconds: float, warmup: float
) -> Phase:
    """``clients`` loops, each sending its next request when the previous one is answered."""
    phase = Phase()
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        url = c.url + c.path

        async def loop(stop_at: float, into: Phase, k: int) -> None:
            i = k
            while time.perf_counter() < stop_at:
                await _post(http, url, payloads[i % len(payloads)], into, time.perf_counter())
                i += clients

        await asyncio.gather(
            *(loop(time.perf_counter() + warmup, Phase(), k) for k in range(clients))
        )
        phase.loadavg = os.getloadavg()[0]
        cpu0, started = cpu_seconds(c), time.perf_counter()
        await asyncio.gather(*(loop(started + seconds, phase, k) for k in range(clients)))
        phase.seconds = time.perf_counter() - started
        phase.cpu_s = cpu_seconds(c) - cpu0
    return phase


async def open_loop(c: Contender, payloads: list[bytes], rate: float, seconds: float) -> Phase:
    """Requests sent on a fixed schedule whatever the answers; latency from the schedule."""
    phase = Phase()
    connector = aiohttp.TCPConnector(limit=512)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        url = c.url + c.path
        # a short warm-up at the same rate opens the connections
        await _schedule(http, url, payloads, rate, min(2.0, seconds / 4), Phase())
        phase.loadavg = os.getloadavg()[0]
        cpu0, started = cpu_seconds(c), time.perf_counter()
        await _schedule(http, url, payloads, rate, seconds, phase)
        phase.seconds = time.perf_counter() - started
        phase.cpu_s = cpu_seconds(c) - cpu0
    return phase


async def _schedule(
    http: aiohttp.ClientSession,
    url: str,
    payloads: list[bytes],
    rate: float,
    seconds: float,
    phase: Phase,
) -> None:
    n = max(1, int(rate * seconds))
    start = time.perf_counter()
    tasks = []
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_post(http, url, payloads[i % len(payloads)], phase, due)))
    await asyncio.gather(*tasks)


# --------------------------------------------------------------------------- in-process


class InProcess:
    """The classifier itself: the upper bound without HTTP (loaded like the services do)."""

    def __init__(self, uri: str) -> None:
        import mlflow.pyfunc

        self.pyfunc = mlflow.pyfunc.load_model(uri)
        python_model = self.pyfunc.unwrap_python_model()
        self.classifier = python_model.classifier  # set up for serving by the pyfunc

    def run(self, texts: list[str], per_call: int, seconds: float) -> Phase:
        phase = Phase(texts_per_request=per_call)
        rng = random.Random(per_call)
        batches = [rng.sample(texts, per_call) for _ in range(256)]
        self.classifier.predict_proba(batches[0])  # warm
        phase.loadavg = os.getloadavg()[0]
        cpu0 = time.process_time()
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            t0 = time.perf_counter()
            self.classifier.predict_proba(batches[phase.ok % len(batches)])
            phase.latencies.append(time.perf_counter() - t0)
            phase.ok += 1
        phase.seconds = time.perf_counter() - started
        phase.cpu_s = time.process_time() - cpu0
        return phase


# --------------------------------------------------------------------------- report


def median_of(rounds: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rounds if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def summarise(raw: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for name, phases in raw.items():
        row: dict[str, Any] = {}
        sat, half, batch = (
            phases.get("saturation", []),
            phases.get("half", []),
            phases.get("batched", []),
        )
        row["single_rps"] = median_of(sat, "requests_per_s")
        row["single_cpu_ms"] = median_of(sat, "cpu_ms_per_request")
        row["single_errors"] = sum(sum(r["errors"].values()) for r in sat)
        row["half_rate_rps"] = median_of(half, "requests_per_s")
        row["half_p50_ms"] = median_of(half, "p50_ms")
        row["half_p99_ms"] = median_of(half, "p99_ms")
        row["half_errors"] = sum(sum(r["errors"].values()) for r in half)
        common = phases.get("common", [])
        row["common_p50_ms"] = median_of(common, "p50_ms")
        row["common_p99_ms"] = median_of(common, "p99_ms")
        row["common_errors"] = sum(sum(r["errors"].values()) for r in common)
        row["batched_texts_per_s"] = median_of(batch, "texts_per_s")
        row["batched_cpu_ms_per_text"] = (
            round(row_cpu / batch[0]["texts_per_request"], 3)
            if (row_cpu := median_of(batch, "cpu_ms_per_request")) and batch
            else None
        )
        row["batched_errors"] = sum(sum(r["errors"].values()) for r in batch)
        table[name] = row
    return table


def ratios(table: dict[str, dict[str, Any]], ours: str) -> dict[str, dict[str, float | None]]:
    def r(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    mine = table.get(ours, {})
    out: dict[str, dict[str, float | None]] = {}
    for other in ("mlflow", "kserve", "in-process"):
        if other not in table:
            continue
        theirs = table[other]
        out[other] = {
            "single_rps": r(mine.get("single_rps"), theirs.get("single_rps")),
            "half_p50_ms": r(mine.get("half_p50_ms"), theirs.get("half_p50_ms")),
            "half_p99_ms": r(mine.get("half_p99_ms"), theirs.get("half_p99_ms")),
            "common_p99_ms": r(mine.get("common_p99_ms"), theirs.get("common_p99_ms")),
            "batched_texts_per_s": r(
                mine.get("batched_texts_per_s"), theirs.get("batched_texts_per_s")
            ),
        }
    return out


def print_table(table: dict[str, dict[str, Any]], result: dict[str, Any]) -> None:
    cols = [
        ("single_rps", "1-text req/s"),
        ("single_cpu_ms", "CPU ms/req"),
        ("half_p50_ms", "p50 ms @½"),
        ("half_p99_ms", "p99 ms @½"),
        ("common_p50_ms", f"p50 ms @{result['common_rate']:.0f}/s"),
        ("common_p99_ms", f"p99 ms @{result['common_rate']:.0f}/s"),
        ("batched_texts_per_s", f"texts/s ({result['batch']}/req)"),
        ("batched_cpu_ms_per_text", "CPU ms/text"),
    ]
    print("| contender | " + " | ".join(h for _, h in cols) + " | errors |")
    print("|---" * (len(cols) + 2) + "|")
    for name, row in table.items():
        errors = row.get("single_errors", 0) + row.get("half_errors", 0)
        errors += row.get("common_errors", 0)
        errors += row.get("batched_errors", 0)
        cells = [str(row.get(k)) if row.get(k) is not None else "–" for k, _ in cols]
        print(f"| {name} | " + " | ".join(cells) + f" | {errors} |")
    print()
    for other, values in result["ratios"].items():
        shown = ", ".join(f"{k} ×{v}" for k, v in values.items() if v is not None)
        print(f"textops / {other}: {shown}")
    if result.get("monitoring_cost") is not None:
        print(f"drift monitoring cost (CPU per single-text request): {result['monitoring_cost']}")
    print(f"load average (1 min) seen during the phases: {result['loadavg']}")


def plot(table: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    panels = [
        ("single_rps", "one text per request: req/s at saturation"),
        ("half_p99_ms", "p99 latency (ms) at half of saturation"),
        ("batched_texts_per_s", "texts/s, 32 texts per request"),
    ]
    for ax, (key, title) in zip(axes, panels, strict=True):
        values = [table[n].get(key) or 0 for n in names]
        bars = ax.bar(
            names, values, color=["#c44" if n.startswith("textops") else "#888" for n in names]
        )
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --------------------------------------------------------------------------- main


async def measure(
    c: Contender, args: argparse.Namespace, texts: list[str], into: dict[str, list[dict[str, Any]]]
) -> None:
    single = _payloads(c, texts, 1)
    sat = await closed_loop(c, single, args.concurrency, args.seconds, args.warmup)
    s = sat.summary()
    into.setdefault("saturation", []).append(s)
    say(
        f"  {c.name}: saturation {s['requests_per_s']} req/s, p99 {s['p99_ms']} ms, "
        f"CPU {s['cpu_ms_per_request']} ms/req, errors {s['errors']}, load {s['loadavg_1m']}"
    )
    rate = max(1.0, sat.ok / sat.seconds / 2) if sat.seconds else 1.0
    half = (await open_loop(c, single, rate, args.seconds)).summary()
    half["rate"] = round(rate, 1)
    into.setdefault("half", []).append(half)
    say(
        f"  {c.name}: at {rate:.0f} req/s p50 {half['p50_ms']} ms, p99 {half['p99_ms']} ms, "
        f"errors {half['errors']}"
    )
    # the same offered load for everyone: tails compared at equal pressure, not equal share
    common = (await open_loop(c, single, args.common_rate, args.seconds)).summary()
    into.setdefault("common", []).append(common)
    say(
        f"  {c.name}: at {args.common_rate:.0f} req/s (common) p50 {common['p50_ms']} ms, "
        f"p99 {common['p99_ms']} ms, errors {common['errors']}"
    )
    batched_payloads = _payloads(c, texts, args.batch, 128)
    batched = await closed_loop(c, batched_payloads, args.batch_clients, args.seconds, args.warmup)
    batched.texts_per_request = args.batch
    b = batched.summary()
    into.setdefault("batched", []).append(b)
    say(
        f"  {c.name}: batched {b['texts_per_s']} texts/s, p99 {b['p99_ms']} ms, "
        f"errors {b['errors']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument(
        "--common-rate",
        type=float,
        default=60.0,
        help="req/s offered to every contender for latency at equal load (default 60: below "
        "half of the slowest one's saturation here)",
    )
    parser.add_argument("--home", type=Path, help="a TEXTOPS_HOME with a champion (reused)")
    parser.add_argument("--only", help="comma-separated contenders (default: all)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="also serve textops-NAME with these settings, e.g. nowait:TEXTOPS_MAX_LATENCY_MS=1",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "serving.json")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None

    def wanted(name: str) -> bool:
        return only is None or name in only

    with tempfile.TemporaryDirectory(prefix="textops-serving-bench-") as tmp:
        home = args.home.resolve() if args.home else Path(tmp) / "home"
        home, uri, model_dir = ensure_model(home)
        say(f"model {uri} ({model_dir})")
        kserve_python = ensure_kserve_venv() if wanted("kserve") else None
        texts = corpus_texts(2000)
        variants = [parse_variant(v) for v in args.variant]
        servers = [
            c for c in contenders(home, uri, model_dir, kserve_python, variants) if wanted(c.name)
        ]
        logs = Path(tmp) / "logs"
        logs.mkdir()
        raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
        local = InProcess(uri) if wanted("in-process") else None
        try:
            for c in servers:
                say(f"starting {c.name} on port {c.port}")
                start(c, logs)
            for c in servers:
                wait_ready(c)
                say(f"{c.name} ready")
            names = [c.name for c in servers] + (["in-process"] if local else [])
            for r in range(args.rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                say(f"round {r + 1}/{args.rounds}: {', '.join(order)}")
                for name in order:
                    into = raw.setdefault(name, {})
                    if name == "in-process":
                        assert local is not None
                        one = local.run(texts, 1, args.seconds).summary()
                        many = local.run(texts, args.batch, args.seconds).summary()
                        into.setdefault("saturation", []).append(one)
                        into.setdefault("batched", []).append(many)
                        say(
                            f"  in-process: {one['texts_per_s']} texts/s one at a time, "
                            f"{many['texts_per_s']} in batches of {args.batch}"
                        )
                        continue
                    c = next(s for s in servers if s.name == name)
                    asyncio.run(measure(c, args, texts, into))
        finally:
            for c in servers:
                stop(c)
    table = summarise(raw)
    loads = [p["loadavg_1m"] for phases in raw.values() for ps in phases.values() for p in ps]
    on, off = table.get("textops", {}), table.get("textops-nodrift", {})
    cost = None
    if on.get("single_cpu_ms") and off.get("single_cpu_ms"):
        cost = round(1 - off["single_cpu_ms"] / on["single_cpu_ms"], 3)
    result = {
        "model_uri": uri,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "batch": args.batch,
        "batch_clients": args.batch_clients,
        "common_rate": args.common_rate,
        "cpu_count": os.cpu_count(),
        "loadavg": {
            "min": min(loads, default=None),
            "median": round(statistics.median(loads), 2) if loads else None,
            "max": max(loads, default=None),
        },
        "table": table,
        "ratios": ratios(table, "textops"),
        "monitoring_cost": cost,
        "raw": raw,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8")
    plot(table, args.out.with_suffix(".png"))
    print_table(table, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
