"""The append-only audit log of personal data: who (key id or CLI command) read, exported, erased or purged
which customer or passport, and when. Entries name records by public id and never hold measurements or
geometry; the database refuses to change or delete them (triggers of migration api0001)."""

from __future__ import annotations

from sqlmodel import Session

from api.models import AuditEntry

ACTIONS = ("read", "export", "erase", "purge", "consent")


def record(session: Session, tenant_id: int, actor: str, action: str, object_type: str, object_id: str,
           detail: str = "") -> None:
    """Add an entry to the session; it is committed with the work it records."""
    assert action in ACTIONS, action
    session.add(AuditEntry(tenant_id=tenant_id, actor=actor, action=action, object_type=object_type,
                           object_id=object_id, detail=detail[:200]))
