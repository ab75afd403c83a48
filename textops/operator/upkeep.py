"""The level-triggered upkeep: every watched ModelDeployment is ticked every interval.

Why not a Kopf timer: Kopf puts a finalizer on every resource that has a timer (to stop the
timer before the resource goes), and releasing it depended on the timer's thread finishing
and on a later event: deletions sometimes hung for minutes (issue 16; the tests restarted
the operator to get them through). The operator needs nothing done at deletion — the
children go with the garbage collector, the metrics with the DELETED watch event — so it
keeps no finalizer at all, and this loop does what the timer did: one pass per resource
per interval (`reconcile.tick`: converge, then observe and decide retraining), never two
passes of one resource at once, in a thread pool because the clients block.

State is in each resource's status; a restarted operator simply starts ticking again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from kubernetes.client.exceptions import ApiException

logger = logging.getLogger("textops.operator.upkeep")

Key = tuple[str, str]


class Upkeep:
    """Ticks every resource `list_keys` returns, every `interval` seconds."""

    def __init__(
        self,
        list_keys: Callable[[], list[Key]],
        tick: Callable[[str, str], None],
        interval: float,
        workers: int,
    ) -> None:
        self.list_keys = list_keys
        self.tick = tick
        self.interval = interval
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upkeep")
        self.running: dict[Key, Future[None]] = {}

    def due(self, keys: Sequence[Key]) -> list[Key]:
        """The resources to tick now: those without a pass still running (pure)."""
        return [key for key in keys if key not in self.running]

    def start(self, key: Key) -> None:
        future = self.pool.submit(self._tick, key)
        self.running[key] = future
        future.add_done_callback(lambda _: self.running.pop(key, None))

    def _tick(self, key: Key) -> None:
        try:
            self.tick(*key)
        except Exception:  # one resource's failure must not stop the others' upkeep
            logger.exception("upkeep of %s/%s failed", *key)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: list, start the due passes, wait an interval."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                keys = await loop.run_in_executor(self.pool, self.list_keys)
            except (ApiException, OSError) as exc:  # the API restarting: the next round retries
                logger.warning("listing ModelDeployments failed: %s", exc)
                keys = []
            for key in self.due(keys):
                self.start(key)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
