"""The request dependencies every route goes through: a database session, the caller's key or customer session
token (`authenticated`, attached to the whole /v1 router, so no route can be without it) and `access(scope)`, which
checks the scope and hands the route a Repository scoped to the caller's tenant (and, for a session token, whose
passport reads find its customer's passports only): the only way a route reaches the database. And the record of
refused requests for personal data (`record_refusal`), who tried is as much the audit log's business as who did."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from functools import lru_cache

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlmodel import Session, select
from starlette.datastructures import Headers
from starlette.routing import compile_path

from api import audit
from api.auth import Principal, authenticate, require_api_key, require_scope
from api.models import ApiKey, Customer, MailingJob, PassportRecord, ScanJobRecord
from api.repository import Repository
from core.errors import Forbidden

log = logging.getLogger(__name__)
PERSONAL = {"loyalty_id": "customer", "passport_id": "passport", "scan_id": "scan", "job_id": "mailing"}  # path
# parameter -> what of a customer's it names (a scan shows their loyalty id, a mailing job's results name them)
REFUSALS = (401, 403, 404)

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="An API key from `footfit keys create`, sent as 'Authorization: Bearer ff_...'; in "
                                "a shopper's browser a customer session token ('Bearer ffs_...', POST "
                                "/v1/customers/{loyalty_id}/sessions) instead")


def db_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


def authenticated(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer),
                  session: Session = Depends(db_session)) -> Principal:
    request.state.principal = authenticate(session, credentials.credentials if credentials else None)
    return request.state.principal  # also for record_refusal, should the request be refused later


def access(scope: str | None, store_key: bool = False) -> Callable[..., Repository]:
    """A dependency: the tenant-scoped repository, for a caller holding `scope` (None: any valid API key). A
    customer session token holds auth.SESSION_SCOPES only, so every other route refuses it. `store_key`: only a
    key of a store (a kiosk key) may call the route: the rig agent's routes."""

    def repository(request: Request, principal: Principal = Depends(authenticated),
                   session: Session = Depends(db_session)) -> Repository:
        if scope is None:
            require_api_key(principal)
        else:
            require_scope(principal, scope)
        if store_key and not principal.is_kiosk:
            raise Forbidden("only a kiosk key (a key of the rig's store) runs a rig's scans: give `footfit agent` "
                            "that store's kiosk key")
        return Repository(session, principal, passport_stored=request.app.state.fitting.prepare)

    repository.scope, repository.store_key = scope, store_key  # read by the route inventory test and the docs
    return repository


def record_refusal(scope, status: int) -> None:
    """Audit a refused request (401, 403, 404) naming personal data in its path: a customer, passport, scan or
    mailing job. Who asked (the key id, never the secret; a key id that exists even when its secret was wrong), what
    (the object's public id where it exists, in its owner's log: another tenant probing a passport is in the owner's
    trail) and how (status, method, the route's path without the values). A 404 for an object of the caller's own (a
    passport without a pressure map, a scan without a camera frame yet) answers rather than refuses: not recorded.
    `scope` is the request's ASGI scope: the error handler (api/app.py) has it, and so does the admission that
    refuses keys at the door (api/gate.py), before any route was matched."""
    route, params = _route(scope)
    named = [(kind, params[name]) for name, kind in PERSONAL.items() if name in params]
    if status not in REFUSALS or not named:
        return
    object_type, asked = named[0]
    with Session(scope["app"].state.engine) as session:  # no Repository: the object's owner may be another tenant
        actor, principal = _caller(session, scope)
        caller_tenant = principal.tenant_id if principal else None
        owner, object_id, customer_id = _owner(session, scope, principal, object_type, asked)
        if status == 404 and owner is not None and owner == caller_tenant:
            return
        tenant_id = owner if owner is not None else caller_tenant
        detail = f"{status} {scope['method']} {route}"
        if tenant_id is None:
            log.warning("refused %s by %s: no tenant's audit log to record it in", detail, actor)
            return
        audit.record(session, tenant_id, actor, "refused", object_type, object_id,
                     audit.about(customer_id, detail) if customer_id else detail)
        session.commit()


def _route(scope) -> tuple[str, dict[str, str]]:
    """The path of the route the request was for, as the schema publishes it (/v1/passports/{passport_id}), and the
    values the request put in it; matched here, so also for a request refused before it reached a route."""
    for path, pattern in _published_paths(scope["app"]):
        found = pattern.fullmatch(scope["path"])
        if found:
            return path, found.groupdict()
    return "", {}


@lru_cache(maxsize=8)
def _published_paths(app) -> list[tuple[str, re.Pattern]]:
    return [(path, compile_path(path)[0]) for path in app.openapi()["paths"]]


def _caller(session: Session, scope) -> tuple[str, Principal | None]:
    """The audit log's actor and the caller's principal: as authenticated, or else the key its token names."""
    principal = scope.get("state", {}).get("principal")
    if principal is not None:
        return principal.key_id, principal
    _, token = get_authorization_scheme_param(Headers(scope=scope).get("authorization"))
    prefix, _, rest = token.partition("_")
    key = session.get(ApiKey, rest.partition("_")[0]) if prefix == "ff" else None
    if key is None:
        return "anonymous", None
    return key.id, Principal(key.id, key.tenant_id, key.store_id, frozenset())


def _owner(session: Session, scope, principal: Principal | None, object_type: str,
           asked: str) -> tuple[int | None, str, str | None]:
    """(the owner's tenant, the object's public id, its customer's) of what the path names; (None, "", None) for
    nothing that exists (or, for a loyalty id or a scan, nothing of the caller's)."""
    nothing = None, "", None
    if object_type == "passport":
        found = session.exec(select(PassportRecord.tenant_id, PassportRecord.customer_id)
                             .where(PassportRecord.id == asked)).first()
        return (found[0], asked, found[1]) if found else nothing
    if object_type == "mailing":
        owner = session.exec(select(MailingJob.tenant_id).where(MailingJob.id == asked)).first()
        return (owner, asked, None) if owner is not None else nothing
    if principal is None:
        return nothing
    if object_type == "customer":
        customer_id = session.exec(select(Customer.id).where(Customer.tenant_id == principal.tenant_id,
                                                             Customer.loyalty_id == asked)).first()
        return (principal.tenant_id, customer_id, None) if customer_id else nothing
    scan = select(ScanJobRecord.id).where(ScanJobRecord.id == asked, ScanJobRecord.tenant_id == principal.tenant_id)
    if principal.is_kiosk:
        scan = scan.where(ScanJobRecord.store_id == principal.store_id)
    return (principal.tenant_id, asked, None) if session.exec(scan).first() else nothing
