"""What customers have consented to: the newest decision per purpose is in force. Decisions are recorded with
their customer (customers.record_consent)."""

from __future__ import annotations

from sqlmodel import select

from api import privacy
from api.models import CONSENT_PURPOSES, Consent, Customer
from api.repository import Repository
from core.errors import Conflict


def in_force(repo: Repository, customer_id: str) -> dict[str, bool]:
    """Purpose -> granted for a customer read through the repository (plain rows: every webshop read asks)."""
    state = {purpose: False for purpose in CONSENT_PURPOSES}
    decisions = repo.session.exec(select(Consent.purpose, Consent.granted)
                                  .where(Consent.customer_id == customer_id).order_by(Consent.id))
    state.update(decisions.all())
    return state


def history(repo: Repository, customer: Customer) -> list[Consent]:
    """The customer's decisions, oldest first."""
    return list(repo.session.exec(select(Consent).where(Consent.customer_id == customer.id).order_by(Consent.id)))


def require_scan_storage(repo: Repository, customer: Customer) -> None:
    """Conflict unless the customer's scan-storage consent is in force."""
    if not in_force(repo, customer.id)["scan_storage"]:
        raise Conflict(f"customer {customer.loyalty_id!r} has not consented to scan storage: record it with "
                       f"POST /v1/customers/{customer.loyalty_id}/consents (purpose scan_storage) first")


def marketing_consenting(repo: Repository) -> set[str]:
    """Ids of the tenant's customers whose newest marketing decision is a grant."""
    decisions = privacy.newest_decisions(repo.session, repo.tenant_id, "marketing")
    return {customer_id for customer_id, granted in decisions.items() if granted}
