"""A direct ASGI route for the hot endpoint, in front of FastAPI.

Why: for a BentoML class view FastAPI does per request what /predict does not need — solving
dependencies (``self`` is injected by a synchronous dependency, run in a thread pool), exit
stacks, telemetry wrappers — and under load that cost more CPU than classifying the text.
/predict reads and validates its raw body itself anyway, so this middleware hands matching
requests straight to a handler ``(body, content type) -> (status, JSON bytes)``. Everything
else goes on to FastAPI, which still documents /predict in the OpenAPI schema (its view calls
the same handler).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Handler = Callable[[bytes, str | None], Awaitable[tuple[int, bytes]]]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]


class DirectRoutes:
    """Serve ``routes[(METHOD, path)]`` directly; pass anything else to ``app``.

    ``routes`` may be filled after the app is built (the service registers its handlers when
    a worker creates it); until then every request goes to ``app``.
    """

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], Handler]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.routes:
            handler = self.routes.get((scope["method"], _route_path(scope)))
            if handler is not None:
                body = await _read_body(receive)
                if body is None:  # the client went away
                    return
                status, answer = await handler(body, _header(scope, b"content-type"))
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            *JSON_HEADERS,
                            (b"content-length", str(len(answer)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": answer})
                return
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
