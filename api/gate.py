"""A gate in front of the application: at most `limit` requests are inside it at once; the rest wait outside,
on the event loop, holding nothing.

Why: FastAPI runs each sync dependency and route in a worker thread (40 of them), and a request holds its database
connection (a pool of 15) from the key check to its end, giving its thread back between steps. With more requests
in flight than connections, threads waiting for a connection can take every worker thread while the requests
holding the connections wait for a thread to finish: the service stalls until the pool's 30 s timeout (found by
bench/bench_api.py at 50 concurrent clients). With no more requests inside than connections, that cannot happen.
A request leaves the gate when its response starts, so a long response (a scan's event stream, which gives its
database connection back first) does not keep others waiting.
"""

from __future__ import annotations

import asyncio


class ConcurrencyGate:
    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit
        self._slots: asyncio.Semaphore | None = None  # made on the server's event loop

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        await self._slots.acquire()
        inside = True

        def leave() -> None:
            nonlocal inside
            if inside:
                inside = False
                self._slots.release()

        async def send_and_leave(message):
            if message["type"] == "http.response.start":
                leave()
            await send(message)

        try:
            await self.app(scope, receive, send_and_leave)
        finally:
            leave()
