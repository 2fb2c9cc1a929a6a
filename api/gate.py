"""What a request passes before it may work: the admission at the door, then the gate.

The gate: at most `limit` requests are inside at once; the rest wait outside, on the event loop, holding nothing.
Why: FastAPI runs each sync dependency and route in a worker thread (40 of them), and a request holds its database
connection (a pool of 15) from the key check to its end, giving its thread back between steps. With more requests
in flight than connections, threads waiting for a connection can take every worker thread while the requests
holding the connections wait for a thread to finish: the service stalls until the pool's 30 s timeout (found by
bench/bench_api.py at 50 concurrent clients). With no more requests inside than connections, that cannot happen.
A request leaves the gate when its response starts, so a long response (a scan's event stream, which gives its
database connection back first) does not keep others waiting.

The admission: a place in the gate is only worth giving to a request that can use it at once. A request that
entered before its key was checked and its body had arrived held its place while a client sent its body slowly
or never: 15 such connections held every place and the service answered nobody (issue 13). So the admission,
on the event loop and outside the gate: checks the caller's API key (/v1 only; the pages and the schema need none)
and refuses a missing or bad one (401, audited as any refusal: api.access.record_refusal); counts the requests in
progress per key, per tenant and, for requests without a key, per client address, and refuses one over its share
(429, Retry-After); reads the whole body within `body_timeout_s` (else 408) and `max_upload_bytes` (else 413).
Only then does the request queue for the gate.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import anyio
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from api.access import record_refusal
from api.auth import Principal, authenticate
from api.db import DATABASE_AWAY, DATABASE_RETRY_S
from api.schemas import ErrorBody
from core.errors import Unauthenticated
from core.settings import ServiceSettings

KEY_RECHECK_S = 10.0  # a key checked this recently is admitted without the database (the route checks it again)
KEYS_REMEMBERED = 4096
KEY_LOOKUPS_AT_ONCE = 2  # database look-ups of keys not remembered: bounded, so unknown keys cannot take the pool
RETRY_AFTER_S = 1  # a share frees when one of its requests is answered, usually within milliseconds
T = TypeVar("T")


class Refused(Exception):
    """A request the admission answers itself, with the error shape of the service (api.schemas.ErrorBody)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.response = JSONResponse(ErrorBody(detail=detail).model_dump(), status_code=status, headers=headers)


class Admission:
    """ASGI middleware in front of the gate: key, share and whole body first (module docstring)."""

    def __init__(self, app, engine: Engine, settings: ServiceSettings):
        self.app = app
        self.settings = settings
        self.keys = KeyCheck(engine)
        self.shares = Shares(settings)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        holders: list[Hashable] = []
        try:
            holders = self.shares.take(await self._holders(scope))
            body = await self._body(scope, receive)
            if body is not None:
                refuse_nul_characters(scope, body)
        except Refused as refused:
            self.shares.give_back(holders)
            return await refused.response(scope, receive, send)
        if body is None:  # the client went away
            return self.shares.give_back(holders)

        async def replay():
            nonlocal body
            if body is None:  # after the body: what the client does next (disconnects)
                return await receive()
            message, body = {"type": "http.request", "body": body, "more_body": False}, None
            return message

        await run_until_response_starts(self.app, scope, replay, send, lambda: self.shares.give_back(holders))

    async def _holders(self, scope) -> list[Hashable]:
        """Whose share the request counts against: its key's and tenant's (/v1), or its client address's."""
        if scope["path"] != "/v1" and not scope["path"].startswith("/v1/"):
            return [("address", (scope.get("client") or ("unknown",))[0])]
        try:
            principal = await self.keys.principal(bearer_token(scope))
        except Unauthenticated as exc:
            await self.keys.in_thread(record_refusal, scope, 401)
            raise Refused(401, str(exc), {"WWW-Authenticate": "Bearer"}) from None
        except OperationalError:
            raise Refused(503, DATABASE_AWAY, {"Retry-After": str(DATABASE_RETRY_S)}) from None
        return [("key", principal.key_id), ("tenant", principal.tenant_id)]

    async def _body(self, scope, receive) -> bytes | None:
        """The whole body (None if the client disconnects), within max_upload_bytes and body_timeout_s."""
        limit = self.settings.max_upload_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise too_large(limit)
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.settings.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    if size > limit:
                        raise too_large(limit)
                    if not message.get("more_body"):
                        return b"".join(chunks)
        except TimeoutError:
            raise Refused(408, f"the request body did not arrive within {self.settings.body_timeout_s:g} s (setting "
                               f"FOOTFIT_SERVICE__BODY_TIMEOUT_S): send the whole request at once, or check the "
                               f"connection") from None


def refuse_nul_characters(scope, body: bytes) -> None:
    """Refuse text holding a NUL character (path, query, JSON body): PostgreSQL cannot store one and SQLite would, so
    it is refused at the door, alike on every database. Binary uploads (multipart) may hold NUL bytes."""
    content_type = dict(scope["headers"]).get(b"content-type", b"")
    if ("\x00" in scope["path"] or b"%00" in scope.get("query_string", b"").lower()
            or (content_type.startswith(b"application/json") and (b"\x00" in body or b"\\u0000" in body))):
        raise Refused(422, "the request holds a NUL character (U+0000), which no field accepts: remove it")


def too_large(limit: int) -> Refused:
    return Refused(413, f"the request body is larger than the service accepts ({limit} bytes, setting "
                        f"FOOTFIT_SERVICE__MAX_UPLOAD_BYTES): upload smaller files (a scan's passport and PLYs are "
                        f"about 1.5 MB)")


def bearer_token(scope) -> str | None:
    """The token of an `Authorization: Bearer ...` header (as fastapi.security.HTTPBearer reads it)."""
    scheme, _, token = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


class KeyCheck:
    """auth.authenticate at the door, remembered per token for KEY_RECHECK_S so that a busy key costs a hash, not a
    database read. Only admission trusts the memory: every route checks its key again (api/access.py), so a key
    revoked meanwhile is still refused there. The door's database work (look-ups, the audit of a refusal) runs in
    worker threads, at most KEY_LOOKUPS_AT_ONCE at once."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._checked: OrderedDict[str, tuple[Principal, float]] = OrderedDict()  # sha256 of token -> (who, when)
        self._lookups: anyio.CapacityLimiter | None = None  # made on the server's event loop

    async def principal(self, token: str | None) -> Principal:
        digest = hashlib.sha256((token or "").encode()).hexdigest()
        checked = self._checked.get(digest)
        if checked is not None and time.monotonic() - checked[1] < KEY_RECHECK_S:
            return checked[0]
        principal = await self.in_thread(self._authenticate, token)
        self._checked[digest] = (principal, time.monotonic())
        self._checked.move_to_end(digest)
        while len(self._checked) > KEYS_REMEMBERED:
            self._checked.popitem(last=False)
        return principal

    async def in_thread(self, work: Callable[..., T], *args) -> T:
        if self._lookups is None:
            self._lookups = anyio.CapacityLimiter(KEY_LOOKUPS_AT_ONCE)
        return await anyio.to_thread.run_sync(work, *args, limiter=self._lookups)

    def _authenticate(self, token: str | None) -> Principal:
        with Session(self.engine) as session:
            return authenticate(session, token)


class Shares:
    """Requests in progress (from the door until their response starts) per key, per tenant and per keyless client
    address, each kind up to its setting. Used on the event loop only, so no lock."""

    def __init__(self, settings: ServiceSettings):
        self.limits = {"key": settings.max_requests_per_key, "tenant": settings.max_requests_per_tenant,
                       "address": settings.max_requests_per_address}
        self.taken: Counter = Counter()

    def take(self, holders: list[Hashable]) -> list[Hashable]:
        """A share for each holder, or none and 429 when one of them has none left."""
        for kind, who in holders:
            if self.taken[kind, who] >= self.limits[kind]:
                raise Refused(429, self._over(kind, who), {"Retry-After": str(RETRY_AFTER_S)})
        self.taken.update(holders)
        return holders

    def give_back(self, holders: list[Hashable]) -> None:
        for holder in holders:
            self.taken[holder] -= 1
            if not self.taken[holder]:
                del self.taken[holder]
        holders.clear()  # given back once, however often asked

    def _over(self, kind: str, who) -> str:
        limit = self.limits[kind]
        over = {"key": f"API key or session {who} has {limit} requests in progress",
                "tenant": f"the keys of your tenant have {limit} requests in progress",
                "address": f"{who} has {limit} requests without an API key in progress"}[kind]
        return (f"{over}, the most the service takes at once (setting FOOTFIT_SERVICE__MAX_REQUESTS_PER_"
                f"{kind.upper()}): wait for their answers, then retry")


class ConcurrencyGate:
    """ASGI middleware: at most `limit` requests inside (module docstring)."""

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
        await run_until_response_starts(self.app, scope, receive, send, self._slots.release)


async def run_until_response_starts(app, scope, receive, send, leave: Callable[[], None]) -> None:
    """app(scope, receive, send), calling leave() once: when the response starts, or when the app ends without one."""
    inside = True

    def leave_once() -> None:
        nonlocal inside
        if inside:
            inside = False
            leave()

    async def send_and_leave(message):
        if message["type"] == "http.response.start":
            leave_once()
        await send(message)

    try:
        await app(scope, receive, send_and_leave)
    finally:
        leave_once()
