"""A per-request timeout that lets go of the request once its response has started.

Why: BentoML's ``TimeoutMiddleware`` (``bentoml/_internal/server/http/traffic.py``) arms
``loop.call_later(timeout, ...)`` for every request and never cancels the handle. The handle
keeps the request's waiter future, and through it the request's context and tracing span,
alive for the whole timeout: at 250 requests/s and a 10 s timeout ~2,500 requests' objects
sit in the heap, and the full garbage collections that walk them took 30-120 ms — the p99
of the service (benchmarks/README.md). The upstream fix is one line: cancel the handle when
the response starts (and when the wrapped app returns without one).

This middleware keeps BentoML's contract — a request that has not started its response
within ``timeout`` seconds is cancelled and answered 504 with a message — and cancels its
timer as soon as a response starts or the app returns. An app that fails before responding
re-raises at once instead of holding the request until the timeout. :func:`install` makes
BentoML build its middleware stack with this class: BentoML looks the class up by name when
it builds each worker's app, and the service module calls :func:`install` on import, before
that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class ReleasingTimeoutMiddleware:
    """BentoML's request timeout, with the timer cancelled when it is no longer needed."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(self.timeout, _time_out, waiter)

        async def send_and_release(message: dict[str, Any]) -> None:
            if not waiter.done():
                waiter.set_result(None)
                timer.cancel()
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, send_and_release))
        task.add_done_callback(lambda _: _release(waiter))
        try:
            await waiter
        except TimeoutError:
            if task.cancel():
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await _answer_timeout(send, self.timeout)
            return
        finally:
            timer.cancel()
        await task  # the response goes on (or the app's error surfaces) after the timer


async def _answer_timeout(send: Send, timeout: float) -> None:
    body = json.dumps({"error": f"Not able to process the request in {timeout} seconds"})
    await send(
        {
            "type": "http.response.start",
            "status": 504,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


_replaced: list[type] = []  # BentoML's class, once install() replaced it


def install() -> None:
    """Have BentoML build every app's middleware stack with :class:`ReleasingTimeoutMiddleware`
    in place of its own ``TimeoutMiddleware`` (idempotent)."""
    from bentoml._internal.server.http import traffic

    if traffic.TimeoutMiddleware is not ReleasingTimeoutMiddleware:
        _replaced.append(traffic.TimeoutMiddleware)
        traffic.TimeoutMiddleware = ReleasingTimeoutMiddleware  # type: ignore[misc,assignment]


def bentoml_middleware() -> type:
    """BentoML's own timeout middleware, installed over or not (to compare against)."""
    from bentoml._internal.server.http import traffic

    return _replaced[0] if _replaced else traffic.TimeoutMiddleware
