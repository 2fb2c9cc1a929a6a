"""The /v1 router: every route below it is authenticated (router dependency) and reaches data only through
`access(scope)`, the tenant-scoped repository."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.access import authenticated
from api.routes import account, catalog, customers, fit, jobs, learning, mailing, passports, scans, sessions
from api.schemas import ErrorBody

ERRORS = {status: {"model": ErrorBody, "description": text} for status, text in (
    (401, "no, unknown, expired or revoked API key or customer session token"),
    (403, "the key lacks the scope, or is a kiosk key where a tenant key is needed, or a customer session token "
          "outside its customer's fit answers"),
    (404, "no such object in your tenant"),
    (413, "request body too large"),
    (422, "invalid request; `detail` says what to fix"),
)}
ROUTERS = (account.router, customers.router, sessions.router, passports.router, fit.router, catalog.router,
           scans.router, mailing.router, jobs.router, learning.router)


def v1_router() -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(authenticated)], responses=ERRORS)
    for module_router in ROUTERS:
        router.include_router(module_router)
    return router
