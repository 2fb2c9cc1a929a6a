"""Who may call what: every operation of the published schema, called with every kind of credential on tenant A's
objects, answers what its scope and ownership rules say (`expected`, derived from each route's `access(scope)`
and the credential's scopes and owner, never from observed answers). The same table is docs/api-access.md; the
test fails when that page is stale, and never writes it. To write it:

    .venv/bin/python -m tests.unit.api.test_api_access_matrix
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlmodel import Session, select

from api import auth, tenancy
from api.models import LearnedStateRecord, MailingJob, SessionToken, Tenant, utc_now
from api.repository import learning
from api.routes import ROUTERS
from fitcore.fit.advice import prior_state
from fitcore.scan.rig_scan import preview_jpeg
from testing.api_world import KIOSK_SCOPES, WEBSHOP_SCOPES, World, catalogue_files, import_catalogue, scan_files, world
from tests.unit.api.test_api_kiosk import kiosk_passport, schematic_map

DOC = Path(__file__).resolve().parents[3] / "docs" / "api-access.md"
WRITE_COMMAND = ".venv/bin/python -m tests.unit.api.test_api_access_matrix"
TENANT_SCOPES = frozenset(auth.SCOPES)
# Scopes a route checks in its body besides its access(scope): the pressure map is staff data.
CHECKED_IN_ROUTE = {("get", "/v1/passports/{passport_id}/pressure"): frozenset({"scans:read"})}
# The path parameters that name an object of a tenant (the others: a foot side, a catalogue model).
OWNED = {"loyalty_id", "passport_id", "code", "rig_serial", "scan_id", "job_id", "session_id"}
RIG = "FF-RIG-A"
AGENT = "access-matrix-agent"  # this test plays the rig's agent
JPEG = preview_jpeg(np.zeros((48, 64), np.uint8))


@dataclass(frozen=True)
class Caller:
    """A kind of credential: a column of the matrix."""

    column: str
    what: str
    scopes: frozenset[str] = frozenset()
    kiosk: bool = False  # a key of tenant A's store
    session: str = ""  # a customer session token: of the customer whose objects are called ("own") or another's
    tenant: str = "A"
    valid: bool = True  # False: refused before anything else (expired, revoked, none)


def _listed(scopes: frozenset[str]) -> str:
    return ", ".join(sorted(scopes))


CALLERS = (
    Caller("admin", "a tenant key of tenant A with every tenant scope", TENANT_SCOPES),
    Caller("kiosk", f"a key of A's store: {_listed(auth.parse_scopes(KIOSK_SCOPES))}",
           auth.parse_scopes(KIOSK_SCOPES), kiosk=True),
    Caller("webshop", f"a tenant key of A: {_listed(auth.parse_scopes(WEBSHOP_SCOPES))}",
           auth.parse_scopes(WEBSHOP_SCOPES)),
    Caller("session", f"a customer session token of C1 (POST /v1/customers/C1/sessions): "
                      f"{_listed(auth.SESSION_SCOPES)}", auth.SESSION_SCOPES, session="own"),
    Caller("another customer's session", "the same for customer C2 of tenant A", auth.SESSION_SCOPES,
           session="other"),
    Caller("tenant B admin", "a tenant key of tenant B with every tenant scope", TENANT_SCOPES, tenant="B"),
    Caller("operator", f"the operator's key (`footfit keys create --operator`, of its own tenant): "
                       f"{auth.OPERATOR_SCOPE} only", frozenset({auth.OPERATOR_SCOPE}), tenant="operator"),
    Caller("expired key", "an admin key of A past its expiry", valid=False),
    Caller("revoked key", "a revoked admin key of A", valid=False),
    Caller("expired session", "a session of C1 past its expiry", valid=False),
    Caller("revoked session", "a revoked session of C1", valid=False),
    Caller("no key", "no Authorization header", valid=False),
)


@dataclass(frozen=True)
class Route:
    method: str  # lower case, as the schema
    path: str  # /v1/..., as the schema
    scopes: frozenset[str]  # every scope it needs; none: any API key
    success: int
    store_key: bool = False  # only a key of a store (a kiosk key) may call it: the rig agent's routes

    @property
    def owned(self) -> set[str]:
        return {name for name in OWNED if "{" + name + "}" in self.path}


def routes() -> list[Route]:
    """Every /v1 operation with its access(scope) (api/access.py) and the scopes its body checks."""
    found = []
    for router in ROUTERS:
        for route in router.routes:
            access = next(d.call for d in route.dependant.dependencies if hasattr(d.call, "scope"))
            for method in sorted(route.methods):
                key = (method.lower(), "/v1" + route.path)
                scopes = frozenset({access.scope} if access.scope else ()) | CHECKED_IN_ROUTE.get(key, frozenset())
                found.append(Route(*key, scopes, route.status_code or 200, access.store_key))
    return found


def expected(route: Route, caller: Caller) -> int:
    """The status the rules give: a credential first (401), then the scopes it holds (403: a session token holds
    auth.SESSION_SCOPES and may call no route that needs none; a kiosk key none of auth.KIOSK_DENIED; only a kiosk
    key a rig agent's route), then the owner of the objects named (404: another tenant's; for a session token,
    another customer's passport)."""
    if not caller.valid:
        return 401
    if caller.session and not route.scopes:
        return 403
    if not route.scopes <= caller.scopes or (caller.kiosk and route.scopes & auth.KIOSK_DENIED):
        return 403
    if route.store_key and not caller.kiosk:
        return 403
    if route.owned and caller.tenant != "A":
        return 404
    if caller.session == "other" and "passport_id" in route.owned:
        return 404
    return route.success


def markdown() -> str:
    """docs/api-access.md: the expected status of every route for every kind of credential."""
    head = ["route", "scope", *(c.column for c in CALLERS)]
    rows = [[f"`{r.method.upper()} {r.path}`", " + ".join(sorted(r.scopes)) or "any API key",
             *(str(expected(r, c)) for c in CALLERS)] for r in routes()]
    table = _table([head, *rows])
    legend = _table([["credential", "what it is"], *([c.column, c.what] for c in CALLERS)])
    return f"""# API access: every route and every kind of credential

Generated by `tests/unit/api/test_api_access_matrix.py` from each route's scope (`access(scope)`, api/access.py)
and the ownership rules (docs/api.md, "Tenancy"; docs/webshop-tryon.md). The test calls every route of the
published schema with every credential below on tenant A's objects and fails when an answer, or this page,
differs. After changing a route's scope, a scope or a credential, write this page again:

```sh
{WRITE_COMMAND}
```

Each cell is the status on tenant A's objects: customer C1 (webshop consent in force) and its passport, A's store,
rig, scan, mailing job and C1's session. A 2xx is the route's success: the call is allowed; 401: no valid
credential; 403: the credential may not do this (a scope it lacks; a kiosk key where a tenant key is needed; a
customer session token anywhere but its customer's fit answers); 404: the object is not the caller's (another
tenant's; another customer's passport for a session token), said as if it did not exist.

{legend}

{table}
"""


def _table(rows: list[list[str]]) -> str:
    head, *body = rows
    return "\n".join("| " + " | ".join(row) + " |" for row in [head, ["---"] * len(head), *body])


# --- the calls ------------------------------------------------------------------------------------------------


@dataclass
class TenantA:
    """Tenant A's objects the routes are called on, and a token per kind of credential."""

    w: World
    ids: dict[str, str]  # path parameter -> the object every route names
    own: dict[tuple[str, str], dict[str, str]]  # a route that changes its object (erases, rescans) gets its own
    query: dict[str, int]  # a try-on's model and size
    sku: str
    learned_version: str  # an adopted learned state, to roll back
    tokens: dict[str, str | None] = field(default_factory=dict)  # column -> bearer token
    customers_made: int = 0

    def call(self, route: Route, caller: Caller):
        ids = {**self.ids, **self.own.get((route.method, route.path), {})}
        if "scan_id" in route.owned:  # a cancel, retry or agent's call changes its scan: each call gets a new one
            ids["scan_id"] = self.scan(route)
        token = self.tokens[caller.column]
        request = self.request(route)
        headers = {**request.pop("headers", {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        r = self.w.http.request(route.method.upper(), route.path.format(**ids), **request, headers=headers)
        if "scan_id" in route.owned:
            self.settled(ids["scan_id"])
        elif r.status_code == 202 and "/scans" in route.path:
            self.settled(r.json()["id"])
        return r

    def request(self, route: Route) -> dict:
        """A valid query and body, so only the credential decides the answer."""
        if route.path.endswith("/tryon"):
            return {"params": self.query}
        if (route.method, route.path) == ("post", "/v1/customers"):
            self.customers_made += 1
            return {"json": {"loyalty_id": f"NEW-{self.customers_made}"}}
        if route.path in ("/v1/customers/{loyalty_id}/passports", "/v1/passports/{passport_id}") and \
                route.method in ("post", "put"):
            return {"files": scan_files().multipart()}
        if route.path in ("/v1/catalog/import", "/v1/catalog/interiors"):
            return {"files": _catalogue_upload()}
        if route.path == "/v1/scans/{scan_id}/agent/passport":
            return {"files": {**scan_files().multipart(), "pressure_map": (
                "pressure_map.json", schematic_map().model_dump_json().encode(), "application/json")}}
        if route.path == "/v1/scans/{scan_id}/agent/frame":
            return {"params": {"agent": AGENT}, "content": JPEG, "headers": {"Content-Type": "image/jpeg"}}
        body = {
            "/v1/customers/{loyalty_id}/consents": {"purpose": "marketing", "granted": True, "source": "webshop"},
            "/v1/stores/{code}/stock": {"items": [{"sku": self.sku, "quantity": 4}]},
            "/v1/passports/{passport_id}/feedback": {"event": "bought", "sku": self.sku},
            "/v1/rigs/{rig_serial}/scans": {"loyalty_id": "C1"},
            "/v1/mailings": {"model_ids": [1]},
            "/v1/learning/rollback": {"version": self.learned_version},
            "/v1/rigs/{rig_serial}/agent/take": {"agent": AGENT, "wait_s": 0},
            "/v1/scans/{scan_id}/agent/report": {"agent": AGENT, "phase": "left", "fraction": 0.5},
            "/v1/scans/{scan_id}/agent/end": {"agent": AGENT, "state": "failed", "message": "no rig here"},
        }.get(route.path)
        return {"json": body} if body and route.method in ("post", "put") else {}

    def scan(self, route: Route) -> str:
        """A scan of C1 on A's rig for the route: taken by this test's agent (a rig agent's routes, the preview:
        with a camera frame on show), else failed."""
        r = self.w.call("A", "kiosk", "POST", f"/v1/rigs/{RIG}/scans", json={"loyalty_id": "C1"})
        assert r.status_code == 202, r.text
        scan_id = r.json()["id"]
        taken = self.agent("POST", f"/v1/rigs/{RIG}/agent/take", json={"agent": AGENT, "wait_s": 0})
        assert taken.json()["scan_id"] == scan_id, taken.text
        if route.path.endswith("/preview"):
            self.agent("PUT", f"/v1/scans/{scan_id}/agent/frame", params={"agent": AGENT}, content=JPEG,
                       headers={"Content-Type": "image/jpeg"})
        elif "/agent/" not in route.path:
            self.settled(scan_id)
        return scan_id

    def agent(self, method: str, path: str, headers: dict | None = None, **kwargs):
        """A call of this test's rig agent (tenant A's kiosk key)."""
        headers = {"Authorization": f"Bearer {self.w.tenants['A'].keys['kiosk']}", **(headers or {})}
        r = self.w.http.request(method, path, headers=headers, **kwargs)
        assert r.status_code < 300, r.text
        return r

    def settled(self, scan_id: str) -> None:
        """The scan stopped and the rig free: taken if it still waits, and ended as failed if it still runs."""
        self.agent("POST", f"/v1/rigs/{RIG}/agent/take", json={"agent": AGENT, "wait_s": 0})
        self.w.http.post(f"/v1/scans/{scan_id}/agent/end", json={
            "agent": AGENT, "state": "failed", "message": "the access matrix's rig is not wired"},
            headers={"Authorization": f"Bearer {self.w.tenants['A'].keys['kiosk']}"})  # 409 once it is over
        assert self.w.call("A", "admin", "GET", f"/v1/scans/{scan_id}").json()["state"] != "running"


def _catalogue_upload() -> list:
    """The test catalogue's product file without stock (its stores are no tenant's), and its interiors."""
    products = catalogue_files()
    rows = list(csv.DictReader(io.StringIO(products.read_text())))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows({**row, "stock": ""} for row in rows)
    interiors = sorted((products.parent / "interiors").iterdir())
    return [("products", ("products.csv", out.getvalue().encode(), "text/csv")),
            *(("interiors", (p.name, p.read_bytes(), "application/octet-stream")) for p in interiors)]


def _tenant_a(w: World) -> TenantA:
    skus = import_catalogue(w.engine)
    for loyalty_id in ("C1", "C2", "ERASED"):
        w.customer("A", loyalty_id)
    mine = kiosk_passport(w, "C1")  # a kiosk scan: it has a pressure map
    with Session(w.engine) as session:
        tenancy.add_kiosk(session, "tenant-a", "STORE-A", RIG)
        tenancy.create_tenant(session, "operator", retention_days=1)
        operator_key = auth.create_key(session, "operator", frozenset(), 1, operator=True)[1]
    size = w.call("A", "admin", "GET", f"/v1/passports/{mine}/sizes/1").json()["size_id"]
    job = w.call("A", "admin", "POST", "/v1/mailings", json={"model_ids": [1]}).json()["id"]
    sessions = {loyalty_id: w.call("A", "admin", "POST", f"/v1/customers/{loyalty_id}/sessions").json()
                for loyalty_id in ("C1", "C2")}
    a = TenantA(w, ids={"loyalty_id": "C1", "passport_id": mine, "code": "STORE-A", "rig_serial": RIG,
                        "side": "left", "model_id": "1", "job_id": job, "session_id": sessions["C1"]["id"]},
                own={("delete", "/v1/customers/{loyalty_id}"): {"loyalty_id": "ERASED"},
                     ("delete", "/v1/passports/{passport_id}"): {"passport_id": w.passport("A", "C1")},
                     ("put", "/v1/passports/{passport_id}"): {"passport_id": w.passport("A", "C1")},
                     ("post", "/v1/jobs/{job_id}/cancel"): {"job_id": _running_job(w)},
                     ("delete", "/v1/customers/{loyalty_id}/sessions/{session_id}"): {
                         "session_id": w.call("A", "admin", "POST", "/v1/customers/C1/sessions").json()["id"]}},
                query={"model_id": 1, "size_id": size}, sku=skus[0], learned_version=_adopted_state(w))
    a.tokens = {"admin": w.tenants["A"].keys["admin"], "kiosk": w.tenants["A"].keys["kiosk"],
                "webshop": w.tenants["A"].keys["webshop"], "session": sessions["C1"]["token"],
                "another customer's session": sessions["C2"]["token"], "tenant B admin": w.tenants["B"].keys["admin"],
                "operator": operator_key, "no key": None, **_ended_credentials(w)}
    deadline = time.monotonic() + 60
    while w.call("A", "admin", "GET", f"/v1/mailings/{job}").json()["state"] != "done":
        assert time.monotonic() < deadline, "the mailing job did not finish"
        time.sleep(0.05)
    return a


def _running_job(w: World) -> str:
    """A job of A that another process runs, holding it for an hour (none here takes it over): one to cancel."""
    now = utc_now()
    with Session(w.engine) as session:
        tenant_id = session.exec(select(Tenant.id).where(Tenant.name == w.tenants["A"].name)).one()
        job = MailingJob(tenant_id=tenant_id, created_by=w.tenants["A"].key_ids["admin"], kind="fit-index",
                         state="running", model_ids_json="[]", attempts=1, lease_holder="another-process",
                         lease_expires_at=now + timedelta(hours=1), started_at=now)
        session.add(job)
        session.commit()
        return job.id


def _adopted_state(w: World) -> str:
    """A learned state in use (the prior, stored as if adopted), for the operator to roll back."""
    prior = prior_state()
    with Session(w.engine) as session:
        record = learning.add(session, LearnedStateRecord(version=prior.version, status="candidate", events=0,
                                                           held_out=0, state_json=prior.to_json()))
        learning.judged(session, record, adopt=True)
    return prior.version


def _ended_credentials(w: World) -> dict[str, str]:
    """Tenant A credentials past their expiry or revoked: an admin key each, and a session of C1 each."""
    opened = [w.call("A", "admin", "POST", "/v1/customers/C1/sessions").json() for _ in range(2)]
    assert w.call("A", "admin", "DELETE", f"/v1/customers/C1/sessions/{opened[1]['id']}").status_code == 204
    with Session(w.engine) as session:
        expired, expired_key = auth.create_key(session, "tenant-a", TENANT_SCOPES, 1)
        revoked, revoked_key = auth.create_key(session, "tenant-a", TENANT_SCOPES, 1)
        expired.expires_at = utc_now() - timedelta(seconds=1)
        ended_session = session.get(SessionToken, opened[0]["id"])
        ended_session.expires_at = utc_now() - timedelta(seconds=1)
        session.add_all([expired, ended_session])
        session.commit()
        auth.revoke_key(session, revoked.id)
    return {"expired key": expired_key, "revoked key": revoked_key, "expired session": opened[0]["token"],
            "revoked session": opened[1]["token"]}


def test_every_route_answers_every_kind_of_credential_as_its_rules_say(database_url):
    with world(database_url) as w:
        schema = w.http.get("/openapi.json").json()["paths"]
        table = routes()
        assert {(r.method, r.path) for r in table} == {(m, p) for p, ops in schema.items() for m in ops}
        a = _tenant_a(w)
        wrong = []
        for route in table:
            for caller in CALLERS:
                r = a.call(route, caller)
                if r.status_code != expected(route, caller):
                    wrong.append(f"{route.method.upper()} {route.path} as {caller.column}: {r.status_code}, "
                                 f"expected {expected(route, caller)} ({r.text[:200]})")
        assert not wrong, "\n".join(wrong)


def test_the_access_page_is_current(tmp_path):
    written = tmp_path / "api-access.md"
    written.write_text(markdown())
    assert DOC.read_text() == written.read_text(), f"docs/api-access.md is stale: run {WRITE_COMMAND}"


if __name__ == "__main__":
    DOC.write_text(markdown())
    print(f"wrote {DOC}")
