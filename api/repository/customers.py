"""The tenant's customers by loyalty id: created, read (audited when for a purpose), their consent decisions
recorded, and everything about them exported or erased (api/privacy.py)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from api import privacy
from api.models import Consent, Customer
from api.repository import Repository, passports
from api.schemas import ConsentIn
from core.errors import Conflict, NotFound


def create(repo: Repository, loyalty_id: str) -> Customer:
    customer = Customer(tenant_id=repo.tenant_id, loyalty_id=loyalty_id)
    repo.session.add(customer)
    try:
        repo.session.commit()
    except IntegrityError:
        repo.session.rollback()
        raise Conflict(f"customer {loyalty_id!r} exists already: use GET /v1/customers/{loyalty_id}") from None
    repo.session.refresh(customer)
    return customer


def get(repo: Repository, loyalty_id: str, purpose: str = "") -> Customer:
    """The customer; with a purpose, the read is audited."""
    customer = repo.session.exec(select(Customer).where(Customer.loyalty_id == loyalty_id)).first()
    if customer is None:
        raise NotFound(f"no customer with loyalty id {loyalty_id!r}: check it, or create the customer with "
                       f"POST /v1/customers")
    if purpose:
        repo.audit("read", "customer", customer.id, purpose)
    return customer


def record_consent(repo: Repository, customer: Customer, decision: ConsentIn) -> tuple[Consent, int]:
    """Record a decision; withdrawing scan storage erases the customer's passports (how many is returned)."""
    consent = Consent(customer_id=customer.id, purpose=decision.purpose, granted=decision.granted,
                      source=decision.source, recorded_by=repo.principal.key_id)
    repo.session.add(consent)
    repo.audit("consent", "customer", customer.id,
               f"{'gave' if decision.granted else 'withdrew'} {decision.purpose} ({decision.source})")
    erased = 0
    if decision.purpose == "scan_storage" and not decision.granted:
        ids = [p.id for p in passports.of_customer(repo, customer)]
        privacy.erase_passports(repo.session, ids)
        for passport_id in ids:
            repo.audit("erase", "passport", passport_id, "scan-storage consent withdrawn")
        erased = len(ids)
    repo.session.commit()
    repo.session.refresh(consent)
    return consent, erased


def export(repo: Repository, customer: Customer) -> bytes:
    """A zip of everything about the customer (api/privacy.py)."""
    archive = privacy.export_customer(repo.session, customer)
    repo.audit("export", "customer", customer.id)
    repo.session.commit()
    return archive


def erase(repo: Repository, customer: Customer) -> Counter:
    """Erase the customer with their passports, everything derived and their consent records; rows per table."""
    passport_ids = [p.id for p in passports.of_customer(repo, customer)]
    deleted = privacy.erase_customer(repo.session, customer)
    repo.audit("erase", "customer", customer.id, f"with {len(passport_ids)} passports")
    for passport_id in passport_ids:
        repo.audit("erase", "passport", passport_id, "with its customer")
    repo.session.commit()
    return deleted
