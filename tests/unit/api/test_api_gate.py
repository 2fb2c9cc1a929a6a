"""The concurrency gate (api/gate.py): no more requests inside than its limit, the others wait and all finish, and
a request that has started its response (an event stream) no longer counts."""

from __future__ import annotations

import asyncio
import select
import socket
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from api.gate import ConcurrencyGate
from testing.api_world import world


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


# --- the door in front of the gate, against a real server (issue 13) ---

def slow_request(base_url: str, token: str | None = None, path: str = "/v1/customers",
                 admitted: bool = False) -> socket.socket:
    """A connection that sends a request's headers, declares a 100-byte body and sends one byte of it. `admitted`:
    first wait until the server reads the body (it answers `Expect: 100-continue` then), i.e. the request has been
    let in and holds its shares."""
    host, port = base_url.removeprefix("http://").split(":")
    assert host == "127.0.0.1"
    connection = socket.create_connection((host, int(port)), timeout=5)
    key = f"Authorization: Bearer {token}\r\n" if token else ""
    expect = "Expect: 100-continue\r\n" if admitted else ""
    connection.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{key}{expect}Content-Type: application/json\r\n"
                       f"Content-Length: 100\r\n\r\n".encode())
    if admitted:
        assert connection.recv(4096).startswith(b"HTTP/1.1 100 ")
    connection.sendall(b"{")
    return connection


def answer_status(connection: socket.socket) -> int | None:
    """The status the server answered on a slow connection, or None if it closed it without one."""
    head = connection.recv(4096)
    return int(head.split()[1]) if head else None


@contextmanager
def held(connections: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield connections
    finally:
        for connection in connections:
            connection.close()


def test_slow_unauthenticated_clients_do_not_stall_the_service(database_url):
    """The issue's reproduction: 15 keyless slow uploads used to hold every place of the gate."""
    with world(database_url) as w, held([slow_request(w.base_url) for _ in range(15)]) as slow:
        me = w.call("A", "kiosk", "GET", "/v1/me", timeout=5)
        assert me.status_code == 200
        assert {answer_status(c) for c in slow} == {401}  # refused at the door, the body never read


def test_a_slow_body_holds_no_place_and_gets_408(database_url):
    with world(database_url, body_timeout_s=3.0) as w:
        token = w.tenants["A"].keys["admin"]
        with held([slow_request(w.base_url, token) for _ in range(15)]) as slow:
            assert w.call("A", "admin", "GET", "/v1/me", timeout=5).status_code == 200
            answered, _, _ = select.select(slow, [], [], 0)
            assert answered == []  # /v1/me was answered while every body still trickled
            statuses = [answer_status(c) for c in slow]
        assert statuses == [408] * 15


def test_a_key_tenant_or_keyless_address_over_its_share_gets_429(database_url):
    with world(database_url, max_requests_per_key=2, max_requests_per_tenant=3, max_requests_per_address=2) as w:
        a = w.tenants["A"].keys
        with held([slow_request(w.base_url, a["admin"], admitted=True) for _ in range(2)]):
            over = w.call("A", "admin", "GET", "/v1/me", timeout=5)
            assert over.status_code == 429 and over.headers["Retry-After"] == "1"
            assert "API key" in over.json()["detail"] and "MAX_REQUESTS_PER_KEY" in over.json()["detail"]
            assert w.call("A", "kiosk", "GET", "/v1/me", timeout=5).status_code == 200  # another key of the tenant
            with held([slow_request(w.base_url, a["kiosk"], admitted=True)]):
                tenant_over = w.call("A", "webshop", "GET", "/v1/me", timeout=5)
                assert tenant_over.status_code == 429 and tenant_over.headers["Retry-After"] == "1"
                assert "tenant" in tenant_over.json()["detail"]
                assert w.call("B", "admin", "GET", "/v1/me", timeout=5).status_code == 200  # another tenant
        with held([slow_request(w.base_url, path="/kiosk", admitted=True) for _ in range(2)]):
            keyless = w.http.get("/kiosk", timeout=5)
            assert keyless.status_code == 429 and keyless.headers["Retry-After"] == "1"
            assert "127.0.0.1" in keyless.json()["detail"]
            assert w.call("A", "admin", "GET", "/v1/me", timeout=5).status_code == 200  # keyed: not the address's
        deadline = time.monotonic() + 5  # the closed connections give their shares back
        while w.call("A", "admin", "GET", "/v1/me", timeout=5).status_code == 429 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert w.call("A", "admin", "GET", "/v1/me", timeout=5).status_code == 200
        assert w.http.get("/kiosk", timeout=5).status_code == 200


ROUNDS, REQUESTS_PER_ROUND, SLOW_CLIENTS = 5, 40, 50
P99_FLOOR_S = 0.020  # on the shared 2-core machine an idle p99 of a few ms doubles with any neighbour's burst


def test_me_stays_within_twice_its_idle_p99_while_50_slow_clients_wait(database_url):
    """The issue's measure. Each round times /v1/me idle, then while 50 keyless slow uploads are open (half with no
    key, half with an unknown one; each has had its 401, and the server still waits for the rest of its body); the
    rounds' p99s are compared by their medians, so one stall of the shared machine does not decide it."""
    with world(database_url) as w:
        headers = {"Authorization": f"Bearer {w.tenants['A'].keys['kiosk']}"}
        unknown = "ff_000000000000_" + "x" * 43

        def timings() -> list[float]:
            times = []
            for _ in range(REQUESTS_PER_ROUND):
                started = time.perf_counter()
                assert w.http.get("/v1/me", headers=headers, timeout=5).status_code == 200
                times.append(time.perf_counter() - started)
            return times

        timings()  # warm up
        idle, loaded = [], []
        for _ in range(ROUNDS):
            idle.append(timings())
            with held([slow_request(w.base_url, unknown if i % 2 else None) for i in range(SLOW_CLIENTS)]) as slow:
                assert {answer_status(c) for c in slow} == {401}  # refused at the door; the connections stay open
                loaded.append(timings())
        p99 = [statistics.median(np.percentile(t, 99) for t in runs) for runs in (idle, loaded)]
        p50 = [statistics.median(np.percentile(t, 50) for t in runs) for runs in (idle, loaded)]
        print(f"/v1/me idle p50 {p50[0] * 1e3:.1f} ms p99 {p99[0] * 1e3:.1f} ms; with {SLOW_CLIENTS} slow clients "
              f"p50 {p50[1] * 1e3:.1f} ms p99 {p99[1] * 1e3:.1f} ms")
        assert p99[1] <= max(2 * p99[0], P99_FLOOR_S), (p50, p99)


def test_text_with_a_nul_character_is_refused_at_the_door_on_every_database(database_url):
    """PostgreSQL cannot store U+0000 (it answered 500, found by the schema's stateful run); SQLite would store it."""
    with world(database_url) as w:
        items = [{"sku": "A\u0000", "quantity": 1}]
        stock = w.call("A", "admin", "PUT", "/v1/stores/STORE-A/stock", json={"items": items})
        passport = w.call("A", "admin", "GET", "/v1/passports/a%00b")
        query = w.call("A", "admin", "GET", "/v1/customers/C1", params={"x": "a\u0000"})
        for answer in (stock, passport, query):
            assert answer.status_code == 422 and "NUL character" in answer.json()["detail"], answer.text
        assert w.call("A", "admin", "GET", "/v1/me").status_code == 200
