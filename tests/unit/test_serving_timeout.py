"""The service's request timeout: requests are let go as soon as they are answered.

BentoML's own TimeoutMiddleware is run side by side as the reference for the contract (a
request that starts no response in time is cancelled and answered 504) and for the defect
this middleware exists for: a timer per request that outlives it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from bentoml._internal.server.http import traffic

from textops.errors import TextopsError
from textops.serving import timeout
from textops.serving.config import bentoml_timeout_middleware
from textops.serving.timeout import ReleasingTimeoutMiddleware, bentoml_middleware

BENTOML = bentoml_middleware()

SCOPE = {"type": "http", "method": "POST", "path": "/predict", "headers": []}


async def answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def call(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(dict(SCOPE), receive, send)
    return sent


def live_timers(loop: asyncio.AbstractEventLoop) -> int:
    """Timer handles still armed on the loop (its private schedule: the only way to see them)."""
    return sum(not h.cancelled() for h in loop._scheduled)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("middleware", "left"),
    [(ReleasingTimeoutMiddleware, 0), (BENTOML, 100)],
    ids=["textops", "bentoml"],
)
def test_answered_requests_leave_no_timer_behind(middleware: Any, left: int) -> None:
    """100 answered requests: none of ours stays armed; BentoML's keeps all 100 until the
    timeout (when BentoML fixes this, its row fails and the replacement can go)."""

    async def run() -> int:
        app = middleware(answer, timeout=30)
        for _ in range(100):
            assert (await call(app))[0]["status"] == 200
        return live_timers(asyncio.get_running_loop())

    assert asyncio.run(run()) == left


@pytest.mark.parametrize("middleware", [ReleasingTimeoutMiddleware, BENTOML])
def test_a_request_with_no_answer_in_time_is_cancelled_and_answered_504(middleware: Any) -> None:
    cancelled = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def run() -> list[dict[str, Any]]:
        sent = await asyncio.wait_for(call(middleware(slow, timeout=0.05)), timeout=10)
        await asyncio.wait_for(cancelled.wait(), timeout=10)
        return sent

    sent = asyncio.run(run())
    assert sent[0]["status"] == 504
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert json.loads(body) == {"error": "Not able to process the request in 0.05 seconds"}


def test_an_app_that_fails_before_answering_fails_at_once() -> None:
    """BentoML's holds such a request until the timeout and drops the error; ours raises it."""

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    async def run() -> int:
        with pytest.raises(RuntimeError, match="boom"):
            await asyncio.wait_for(call(ReleasingTimeoutMiddleware(broken, timeout=30)), 5)
        return live_timers(asyncio.get_running_loop())

    assert asyncio.run(run()) == 0


def test_lifespan_passes_through_untimed() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def run() -> int:
        await ReleasingTimeoutMiddleware(app, timeout=30)({"type": "lifespan"}, None, None)
        return live_timers(asyncio.get_running_loop())

    assert asyncio.run(run()) == 0 and seen == ["lifespan"]


def test_install_makes_bentoml_build_with_ours() -> None:
    from bentoml._internal.server.base_app import BaseAppFactory

    original = traffic.TimeoutMiddleware
    try:
        timeout.install()
        timeout.install()  # idempotent

        class App(BaseAppFactory):  # the smallest app factory: only the traffic settings
            name = "t"
            timeout = 5
            max_concurrency = None

            def __init__(self) -> None:
                pass

        classes = [m.cls for m in App().middlewares]
        assert classes == [ReleasingTimeoutMiddleware]
    finally:
        traffic.TimeoutMiddleware = original  # type: ignore[misc]


def test_the_choice_of_middleware_is_checked() -> None:
    assert not bentoml_timeout_middleware({})
    assert bentoml_timeout_middleware({"TEXTOPS_TIMEOUT_MIDDLEWARE": "BentoML"})
    with pytest.raises(TextopsError, match="TEXTOPS_TIMEOUT_MIDDLEWARE must be textops or bentoml"):
        bentoml_timeout_middleware({"TEXTOPS_TIMEOUT_MIDDLEWARE": "none"})


def test_the_service_module_installs_ours() -> None:
    """Loading the service (what every BentoML worker does before building its app) puts ours
    in BentoML's place; TEXTOPS_TIMEOUT_MIDDLEWARE=bentoml is the only way back."""
    import textops.serving.app  # noqa: F401

    assert not bentoml_timeout_middleware()
    assert traffic.TimeoutMiddleware is ReleasingTimeoutMiddleware
