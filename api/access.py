"""The request dependencies every route goes through: a database session, the caller's key (`authenticated`,
attached to the whole /v1 router, so no route can be without it) and `access(scope)`, which checks the scope and
hands the route a Repository scoped to the caller's tenant: the only way a route reaches the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.auth import Principal, authenticate, require_scope
from api.repository import Repository

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="An API key from `footfit keys create`, sent as 'Authorization: Bearer ff_...'")


def db_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


def authenticated(credentials: HTTPAuthorizationCredentials | None = Security(bearer),
                  session: Session = Depends(db_session)) -> Principal:
    return authenticate(session, credentials.credentials if credentials else None)


def access(scope: str | None) -> Callable[..., Repository]:
    """A dependency: the tenant-scoped repository, for a caller holding `scope` (None: any valid key)."""

    def repository(request: Request, principal: Principal = Depends(authenticated),
                   session: Session = Depends(db_session)) -> Repository:
        if scope is not None:
            require_scope(principal, scope)
        return Repository(session, principal, passport_stored=request.app.state.fitting.prepare)

    repository.scope = scope  # read by the route inventory test and the docs
    return repository
