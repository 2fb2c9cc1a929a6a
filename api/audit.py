"""The append-only audit log of personal data: who (key id or CLI command) created, read, exported, erased or purged
which customer or passport, who was refused, and when. Entries name records by public id and never hold the loyalty
id, measurements or geometry; the database refuses to change, delete, overwrite or truncate them (triggers of
migrations api0001 and 0005).

An entry about something of a customer's (a passport) names the customer at the start of its detail (`about`), so
the customer's trail (`customer_trail`) still finds it when the passport is long erased.
"""

from __future__ import annotations

from sqlalchemy import and_, or_
from sqlmodel import Session, select

from api.models import AuditEntry, Customer

ACTIONS = ("create", "read", "export", "erase", "purge", "consent", "refused")


def record(session: Session, tenant_id: int, actor: str, action: str, object_type: str, object_id: str,
           detail: str = "") -> None:
    """Add an entry to the session; it is committed with the work it records."""
    assert action in ACTIONS, action
    session.add(AuditEntry(tenant_id=tenant_id, actor=actor, action=action, object_type=object_type,
                           object_id=object_id, detail=detail[:200]))


def about(customer_id: str, detail: str) -> str:
    """The detail of an entry about something of this customer's."""
    return f"{_customer_prefix(customer_id)}{detail}"


def customer_trail(session: Session, tenant_id: int, customer_id: str) -> list[AuditEntry]:
    """Every entry of the tenant about the customer or something of theirs, oldest first: who touched them and who
    tried. Reads the tenant's whole log (the detail is not indexed): for an auditor's question, not per request."""
    return list(session.exec(select(AuditEntry).where(
        AuditEntry.tenant_id == tenant_id,
        or_(and_(AuditEntry.object_type == "customer", AuditEntry.object_id == customer_id),
            AuditEntry.detail.startswith(_customer_prefix(customer_id), autoescape=True)))
        .order_by(AuditEntry.id)))


def customer_id_named(session: Session, tenant_id: int, name: str) -> str | None:
    """The public id of the tenant's customer with this loyalty id; else `name` itself if the log names a customer
    so (an erased customer is known by their public id only); else None."""
    customer_id = session.exec(select(Customer.id).where(Customer.tenant_id == tenant_id,
                                                         Customer.loyalty_id == name)).first()
    if customer_id is not None:
        return customer_id
    named = session.exec(select(AuditEntry.id).where(AuditEntry.tenant_id == tenant_id,
                                                     AuditEntry.object_type == "customer",
                                                     AuditEntry.object_id == name)).first()
    return name if named is not None else None


def _customer_prefix(customer_id: str) -> str:
    return f"customer {customer_id}: "
