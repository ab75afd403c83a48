"""Micro-batching: concurrent requests share classifier calls and get their own rows back."""

from __future__ import annotations

import asyncio
import threading

import pytest

from textops.serving.batching import MicroBatcher


class Recorder:
    """A fake classifier that records its batches; one row per text (the text doubled)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, texts: list[str]) -> list[str]:
        self.batches.append(list(texts))
        return [t * 2 for t in texts]


def test_concurrent_requests_are_merged_and_answered_in_order() -> None:
    predict = Recorder()
    sizes: list[int] = []
    batcher = MicroBatcher(predict, max_batch_size=64, max_wait_ms=200, on_batch=sizes.append)

    async def main() -> list[list[str]]:
        requests = [[f"a{i}", f"b{i}"] for i in range(10)]
        return await asyncio.gather(*(batcher.submit(r) for r in requests))

    answers = asyncio.run(main())
    assert answers == [[f"a{i}a{i}", f"b{i}b{i}"] for i in range(10)]
    assert sizes == [20] and len(predict.batches) == 1


def test_batches_respect_the_maximum_and_a_big_request_goes_alone() -> None:
    predict = Recorder()
    batcher = MicroBatcher(predict, max_batch_size=4, max_wait_ms=50)

    async def main() -> list[list[str]]:
        requests = [["x"] * 3, ["y"] * 3, ["z"] * 6, ["w"]]
        return await asyncio.gather(*(batcher.submit(r) for r in requests))

    answers = asyncio.run(main())
    assert [len(a) for a in answers] == [3, 3, 6, 1]
    # oldest first, never past 4 texts unless one request alone is bigger
    assert [len(b) for b in predict.batches] == [3, 3, 6, 1]


def test_requests_arriving_during_a_batch_form_the_next_one() -> None:
    entered, gate = threading.Event(), threading.Event()

    def slow(texts: list[str]) -> list[str]:
        entered.set()
        gate.wait(5)
        return texts

    sizes: list[int] = []
    batcher = MicroBatcher(slow, max_batch_size=100, max_wait_ms=0, on_batch=sizes.append)

    async def main() -> None:
        first = asyncio.create_task(batcher.submit(["first"]))
        assert await asyncio.to_thread(entered.wait, 5)  # the first batch is inside predict
        later = [asyncio.create_task(batcher.submit([f"t{i}"])) for i in range(5)]
        await asyncio.sleep(0)  # let them enqueue (a yield, not a timed wait)
        gate.set()
        await asyncio.gather(first, *later)

    asyncio.run(main())
    assert sizes == [1, 5]


def test_a_failing_classifier_fails_every_request_of_its_batch_only() -> None:
    calls = 0

    def flaky(texts: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return texts

    batcher = MicroBatcher(flaky, max_batch_size=8, max_wait_ms=20)

    async def main() -> None:
        results = await asyncio.gather(
            batcher.submit(["a"]), batcher.submit(["b"]), return_exceptions=True
        )
        assert all(isinstance(r, RuntimeError) for r in results)
        assert await batcher.submit(["c"]) == ["c"]

    asyncio.run(main())


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        MicroBatcher(lambda t: t, max_batch_size=0, max_wait_ms=1)
