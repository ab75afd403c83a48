"""A quick load loop for the serving service: requests/s of single-text /predict.

Not a full benchmark: N closed-loop asyncio clients (default 32) POST one text each for a
fixed time against a running service on loopback, then print throughput, latency percentiles
and the mean inference batch size read from the service's own metrics (how much adaptive
batching merged). Start the service first, e.g. ``textops serve models:/NAME@champion``.

    python benchmarks/serving_load.py --url http://127.0.0.1:3000 --concurrency 32 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import urllib.parse

import httpx

TEXTS = [
    "房间很干净，前台服务热情",
    "物流太慢了，屏幕还有划痕",
    "作者的故事情节不错，翻译一般",
    "电池续航差，风扇声音大",
    "早餐种类少，空调不制冷",
    "印刷质量很好，推荐购买",
]


def _batch_stats(metrics: str) -> tuple[float, float]:
    total = count = 0.0
    for line in metrics.splitlines():
        if line.startswith("textops_inference_batch_size_sum{"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("textops_inference_batch_size_count{"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


async def _client(
    http: httpx.AsyncClient, url: str, stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    rng = random.Random()
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        response = await http.post(url, json={"texts": [rng.choice(TEXTS)]})
        if response.status_code == 200:
            latencies.append(time.perf_counter() - started)
        else:
            errors.append(response.status_code)


async def run(base: str, concurrency: int, seconds: float, warmup: float) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        warm: list[float] = []
        await asyncio.gather(
            *(
                _client(http, "/predict", time.perf_counter() + warmup, warm, [])
                for _ in range(concurrency)
            )
        )
        batch_sum0, batch_n0 = _batch_stats((await http.get("/metrics")).text)
        latencies: list[float] = []
        errors: list[int] = []
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _client(http, "/predict", started + seconds, latencies, errors)
                for _ in range(concurrency)
            )
        )
        elapsed = time.perf_counter() - started
        batch_sum1, batch_n1 = _batch_stats((await http.get("/metrics")).text)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    batches = batch_n1 - batch_n0
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "errors": len(errors),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(quantiles[49] * 1000, 1),
        "p95_ms": round(quantiles[94] * 1000, 1),
        "p99_ms": round(quantiles[98] * 1000, 1),
        "mean_batch_size": round((batch_sum1 - batch_sum0) / batches, 2) if batches else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    host = urllib.parse.urlsplit(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("this load loop only targets a service on loopback")
    result = asyncio.run(run(args.url, args.concurrency, args.seconds, args.warmup))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
