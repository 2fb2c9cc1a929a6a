"""The concurrency gate (api/gate.py): no more requests inside than its limit, the others wait and all finish, and
a request that has started its response (an event stream) no longer counts."""

from __future__ import annotations

import asyncio

from api.gate import ConcurrencyGate


class CountingApp:
    """An ASGI app that notes how many requests are inside at once; `/stream` starts its response, then lingers."""

    def __init__(self):
        self.inside = self.most = self.done = 0

    async def __call__(self, scope, receive, send):
        self.inside += 1
        self.most = max(self.most, self.inside)
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            self.inside -= 1
            await asyncio.sleep(0.5)
        else:
            await asyncio.sleep(0.01)
            self.inside -= 1
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        self.done += 1


async def call(gate: ConcurrencyGate, path: str) -> None:
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message):
        pass

    await gate({"type": "http", "path": path}, receive, send)


def test_the_gate_keeps_requests_inside_under_its_limit_and_lets_all_through():
    app = CountingApp()
    gate = ConcurrencyGate(app, limit=3)

    async def burst():
        await asyncio.gather(*[call(gate, "/") for _ in range(40)])

    asyncio.run(burst())
    assert app.most == 3 and app.done == 40


def test_a_started_response_frees_its_place():
    app = CountingApp()
    gate = ConcurrencyGate(app, limit=2)

    async def streams_then_requests():
        streams = [asyncio.create_task(call(gate, "/stream")) for _ in range(4)]
        await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*[call(gate, "/") for _ in range(10)]), timeout=0.4)
        assert not any(s.done() for s in streams), "the requests got in while the streams still ran"
        await asyncio.gather(*streams)

    asyncio.run(streams_then_requests())
    assert app.done == 14
