"""The tenant's customers by loyalty id: created (audited), read (audited when for a purpose), their consent
decisions recorded, everything about them exported or erased (api/privacy.py), and their audit trail."""

from __future__ import annotations

from collections import Counter

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from api import audit, fitting, privacy
from api.models import AuditEntry, Consent, Customer
from api.repository import Repository, passports, stores
from api.schemas import ConsentIn
from core.errors import Conflict, NotFound


def create(repo: Repository, loyalty_id: str) -> Customer:
    origin = _origin(repo)[1]  # looked up first: the lookup would flush the new customer outside the try
    customer = Customer(tenant_id=repo.tenant_id, loyalty_id=loyalty_id)
    repo.session.add(customer)
    repo.audit("create", "customer", customer.id, f"at the {origin}")
    try:
        repo.session.commit()
    except IntegrityError:
        repo.session.rollback()
        raise Conflict(f"customer {loyalty_id!r} exists already: use GET /v1/customers/{loyalty_id}") from None
    repo.session.refresh(customer)
    return customer


def find(repo: Repository, loyalty_id: str) -> Customer | None:
    return repo.session.exec(select(Customer).where(Customer.loyalty_id == loyalty_id)).first()


def get(repo: Repository, loyalty_id: str, purpose: str = "") -> Customer:
    """The customer; with a purpose, the read is audited."""
    customer = find(repo, loyalty_id)
    if customer is None:
        raise NotFound(f"no customer with loyalty id {loyalty_id!r}: check it, or create the customer with "
                       f"POST /v1/customers")
    if purpose:
        repo.audit("read", "customer", customer.id, purpose)
    return customer


def record_consent(repo: Repository, customer: Customer, decision: ConsentIn) -> tuple[Consent, int]:
    """Record a decision with the source the calling key stands for (what the request claims is not evidence).
    Withdrawing scan storage erases the customer's passports at once only for a key that may erase them
    (passports:erase); otherwise the privacy job does (privacy.purge_expired) and they are not used meanwhile
    (passports.read). Returns the decision and how many passports it erased."""
    source, origin = _origin(repo)
    consent = Consent(customer_id=customer.id, purpose=decision.purpose, granted=decision.granted, source=source,
                      recorded_by=repo.principal.key_id)
    repo.session.add(consent)
    repo.audit("consent", "customer", customer.id,
               f"{'gave' if decision.granted else 'withdrew'} {decision.purpose} at the {origin}")
    erased = []
    if decision.purpose == "scan_storage" and not decision.granted and _may_erase(repo):
        erased = [p.id for p in passports.of_customer(repo, customer)]
        privacy.erase_passports(repo.session, erased)
        fitting.forget(erased)
        for passport_id in erased:
            repo.audit("erase", "passport", passport_id, audit.about(customer.id, "scan-storage consent withdrawn"))
    repo.session.commit()
    repo.session.refresh(consent)
    return consent, len(erased)


def _origin(repo: Repository) -> tuple[str, str]:
    """Where the calling key acts: its consent source, and how the audit log says it (a kiosk names its store)."""
    if repo.principal.is_kiosk:
        return "kiosk", f"kiosk of store {stores.code_of(repo, repo.principal.store_id)}"
    return "webshop", "webshop (tenant key)"


def _may_erase(repo: Repository) -> bool:
    return "passports:erase" in repo.principal.scopes and not repo.principal.is_kiosk


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
        repo.audit("erase", "passport", passport_id, audit.about(customer.id, "with its customer"))
    repo.session.commit()
    fitting.forget(passport_ids)
    return deleted


def audit_trail(repo: Repository, customer: Customer) -> list[AuditEntry]:
    """Who touched the customer and who tried (audit.customer_trail); reading it is itself audited."""
    repo.audit("read", "customer", customer.id, "audit trail")
    repo.commit()
    return audit.customer_trail(repo.session, repo.tenant_id, customer.id)
