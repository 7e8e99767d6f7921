"""Route a few fixed paths to side apps (metrics, health) and everything else to one app.

A plain ASGI dispatcher rather than a Starlette ``Router``/``Mount`` because a proxy must not
touch ``path``/``root_path`` of the requests it forwards.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["PathDispatch"]

Hook = Callable[[], Awaitable[None]]


class PathDispatch:
    """Send exact-path matches to their app, the rest to ``default``.

    Lifespan events are answered here: ``on_startup`` hooks run before the server accepts
    requests and ``on_shutdown`` hooks after the last request finished.
    """

    def __init__(
        self,
        default: ASGIApp,
        routes: Mapping[str, ASGIApp],
        *,
        on_startup: Sequence[Hook] = (),
        on_shutdown: Sequence[Hook] = (),
    ) -> None:
        self.default = default
        self.routes = dict(routes)
        self.on_startup = tuple(on_startup)
        self.on_shutdown = tuple(on_shutdown)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        app = self.routes.get(scope.get("path", ""), self.default)
        await app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.on_startup:
                        await hook()
                except Exception as exc:  # reported to the server, which refuses to start
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.on_shutdown:
                    await hook()
                await send({"type": "lifespan.shutdown.complete"})
                return
