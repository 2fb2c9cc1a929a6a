"""THE one place where requests touch the database: a route or job gets a `Repository` (its session, the calling
key, its tenant) and reaches data only through the functions of this package's modules, one per area: customers,
consents, passports, fit_results, feedback, stores, kiosks, mailings, fit_index, assortment, learning.

The tenant scope is a rule of the repository's session, not of each query, so no query can forget it: every ORM
select, update and delete on that session (joins and subqueries included) is confined to the caller's tenant on
each table that has a tenant (TENANT_OWNED). Another tenant's object is simply not found (404, never 403: OWASP
API1). The other tables hang off those (a passport's fit results, a customer's consent decisions: reached through
a record already read here) or are shared by all tenants: the catalogue, and the learned states (product knowledge,
pooled over the tenants: api/repository/learning.py reads them by their own scope). Reads, exports and erasures of
personal data are written to the audit log in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, with_loader_criteria
from sqlmodel import Session

from api import audit
from api.auth import Principal
from api.models import (
    ApiKey,
    AssortmentItem,
    AuditEntry,
    Customer,
    CustomerPreferenceRecord,
    FitIndexChunk,
    Kiosk,
    MailingJob,
    PassportRecord,
    ScanJobRecord,
    Tenant,
    TenantStore,
)

TENANT_OWNED = (TenantStore, Kiosk, ApiKey, Customer, PassportRecord, AuditEntry, MailingJob, AssortmentItem,
                CustomerPreferenceRecord, ScanJobRecord, FitIndexChunk)


class Repository:
    """A request's (or a job's) way to the database: its session, confined to the caller's tenant, the calling key,
    and the audit entries it owes."""

    def __init__(self, session: Session, principal: Principal,
                 passport_stored: Callable[[PassportRecord], None] | None = None):
        self.session = session
        self.principal = principal
        self.tenant_id = principal.tenant_id
        self.passport_stored = passport_stored or (lambda record: None)  # the service prepares its fit work
        self._unwritten_audit: list[tuple[str, str, str, str]] = []
        event.listen(session, "do_orm_execute", self._confine)

    def _confine(self, execution: ORMExecuteState) -> None:
        if execution.is_select or execution.is_update or execution.is_delete:
            execution.statement = execution.statement.options(*_confined_to(self.tenant_id))

    def tenant(self) -> Tenant:
        return self.session.get(Tenant, self.tenant_id)

    def audit(self, action: str, object_type: str, object_id: str, detail: str = "") -> None:
        """An audit entry, committed with the work it records."""
        audit.record(self.session, self.tenant_id, self.principal.key_id, action, object_type, object_id, detail)

    def audit_at_commit(self, action: str, object_type: str, object_id: str, detail: str = "") -> None:
        """An audit entry added only at `commit`: a query in between would otherwise write it early and hold the
        database's write lock through the fit work; and a request that fails before answering has read nothing."""
        self._unwritten_audit.append((action, object_type, object_id, detail))

    def commit(self) -> None:
        for entry in self._unwritten_audit:
            self.audit(*entry)
        self._unwritten_audit.clear()
        self.session.commit()

    def release(self) -> None:
        """End the session's transaction, so a long response (a progress stream) holds no database connection."""
        self.session.close()


@lru_cache(maxsize=1024)
def _confined_to(tenant_id: int) -> tuple:
    """The statement options confining each of TENANT_OWNED to the tenant, made once per tenant (~0.1 ms)."""
    return tuple(with_loader_criteria(table, lambda cls: cls.tenant_id == tenant_id, include_aliases=True)
                 for table in TENANT_OWNED)
