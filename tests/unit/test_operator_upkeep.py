"""The operator's periodic pass (textops/operator/upkeep.py), without a cluster."""

from __future__ import annotations

import asyncio
import threading
import time

from textops.operator.upkeep import Upkeep


def test_every_listed_resource_is_ticked_and_a_failure_stops_nobody() -> None:
    ticked: list[tuple[str, str]] = []
    done = threading.Event()

    def tick(namespace: str, name: str) -> None:
        ticked.append((namespace, name))
        if len(ticked) >= 4:
            done.set()
        if name == "broken":
            raise RuntimeError("one resource's failure")

    keys = [("a", "broken"), ("b", "fine")]
    upkeep = Upkeep(lambda: keys, tick, interval=0.05, workers=2)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(upkeep.run(stop))
        deadline = time.monotonic() + 10
        while not done.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(main())
    upkeep.shutdown()
    assert done.is_set()
    assert ticked.count(("b", "fine")) >= 2  # ticked again after its neighbour failed


def test_a_resource_whose_pass_still_runs_is_not_ticked_twice() -> None:
    release = threading.Event()
    started: list[tuple[str, str]] = []

    def slow(namespace: str, name: str) -> None:
        started.append((namespace, name))
        release.wait(10)

    upkeep = Upkeep(lambda: [("ns", "slow")], slow, interval=0.01, workers=4)
    upkeep.start(("ns", "slow"))
    assert upkeep.due([("ns", "slow"), ("ns", "other")]) == [("ns", "other")]
    release.set()
    deadline = time.monotonic() + 10
    while upkeep.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert upkeep.due([("ns", "slow")]) == [("ns", "slow")]
    upkeep.shutdown()
    assert started == [("ns", "slow")]
