"""Customer sessions (api/auth.py): a webshop's server, holding a tenant key with sessions:create, opens one for
its logged-in customer and hands only the token to the shopper's browser (docs/webshop-tryon.md); it revokes it when
the shopper logs out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from api import audit, auth
from api.access import access
from api.repository import Repository, consents, customers, passports
from api.routes.customers import LoyaltyPath
from api.schemas import SessionIn, SessionOut
from core.errors import Forbidden, InvalidInput

router = APIRouter(prefix="/customers/{loyalty_id}/sessions", tags=["sessions"])
SessionId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$", description="as POST .../sessions answered it")]


@router.post("", status_code=201, response_model=SessionOut,
             summary="Open a customer session: a token for the shopper's browser that reads, for minutes, only this "
                     "customer's recommendations, sizes and try-on")
def open_session(loyalty_id: LoyaltyPath, request: Request, body: SessionIn | None = None,
                 repo: Repository = Depends(access("sessions:create"))) -> SessionOut:
    longest = request.app.state.settings.service.customer_session_minutes
    minutes = (body.minutes if body else None) or longest
    if minutes > longest:
        raise InvalidInput(f"a customer session lives at most {longest} minutes (setting "
                           f"service.customer_session_minutes): ask for {longest} or fewer",
                           [("body.minutes", f"{minutes} is more than {longest}")])
    customer = customers.get(repo, loyalty_id)
    if not consents.in_force(repo, customer.id)["webshop"]:
        raise Forbidden(f"customer {loyalty_id!r} has not consented to webshop use of their passport: record it with "
                        f"POST /v1/customers/{loyalty_id}/consents (purpose webshop) first")
    newest = next(iter(passports.of_customer(repo, customer)), None)
    row, token = auth.open_session(repo.session, repo.principal, customer, minutes)
    repo.audit("create", "session", row.id, audit.about(customer.id, f"for {minutes} min"))
    repo.commit()
    return SessionOut(id=row.id, token=token, expires_at=row.expires_at, passport_id=newest.id if newest else None)


@router.delete("/{session_id}", status_code=204, response_class=Response,
               summary="Revoke a customer session (the shopper logged out): its token is refused from now on")
def revoke_session(loyalty_id: LoyaltyPath, session_id: SessionId,
                   repo: Repository = Depends(access("sessions:create"))) -> Response:
    auth.revoke_session(repo.session, customers.get(repo, loyalty_id), session_id)
    repo.commit()
    return Response(status_code=204)
