"""THE one place where requests touch the database: every query is scoped to the caller's tenant here, so no
route can forget it. Another tenant's object is simply not found (404, never 403: OWASP API1). Reads, exports
and erasures of personal data are written to the audit log in the same transaction.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import delete, func
from sqlalchemy.orm import defer
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from fitcore.scan.pressure import PressureMap
from shoe_db.models import SizeVariant, Stock, Store
from api import audit, privacy
from api.auth import Principal
from api.models import (CONSENT_PURPOSES, Consent, Customer, Feedback, FitResult, Kiosk, MailingJob, MailingMatch,
                        PassportRecord, PressureMapRecord, Tenant, TenantStore, as_utc, utc_now)
from api.passport_upload import PassportUpload, points_blob
from api.schemas import ConsentIn, FeedbackIn


class StoreRow(NamedTuple):
    code: str
    kiosks: list[str]  # rig serials
    size_system: str


# A passport's points (~300 kB) are read only when used: most requests are answered from the points kept in
# memory by the fit service (api/fitting.py) or need none.
POINTS_WHEN_USED = (defer(PassportRecord.left_points), defer(PassportRecord.right_points))
FIT_RESULTS_KEPT = 5  # per passport and kind of answer (recommendations, size, tryon)


class Repository:
    def __init__(self, session: Session, principal: Principal,
                 passport_stored: Callable[[PassportRecord], None] | None = None):
        self.session = session
        self.principal = principal
        self.tenant_id = principal.tenant_id
        self._passport_stored = passport_stored or (lambda record: None)  # the service prepares its fit work
        self._unwritten_audit: list[tuple[str, str, str, str]] = []

    # --- the caller ---
    def tenant(self) -> Tenant:
        return self.session.get(Tenant, self.tenant_id)

    def store_code(self, store_id: int | None) -> str | None:
        return None if store_id is None else self.session.get(Store, store_id).code

    # --- customers and consent ---
    def create_customer(self, loyalty_id: str) -> Customer:
        customer = Customer(tenant_id=self.tenant_id, loyalty_id=loyalty_id)
        self.session.add(customer)
        try:
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            raise Conflict(f"customer {loyalty_id!r} exists already: use GET /v1/customers/{loyalty_id}") from None
        self.session.refresh(customer)
        return customer

    def customer(self, loyalty_id: str, purpose: str = "") -> Customer:
        """The tenant's customer by loyalty id; with a purpose, the read is audited."""
        customer = self.session.exec(select(Customer).where(Customer.tenant_id == self.tenant_id,
                                                            Customer.loyalty_id == loyalty_id)).first()
        if customer is None:
            raise NotFound(f"no customer with loyalty id {loyalty_id!r}: check it, or create the customer with "
                           f"POST /v1/customers")
        if purpose:
            self._audit("read", "customer", customer.id, purpose)
        return customer

    def consents(self, customer: Customer) -> list[Consent]:
        """The customer's consent decisions, oldest first."""
        return list(self.session.exec(select(Consent).where(Consent.customer_id == customer.id)
                                      .order_by(Consent.id)))

    def consent_in_force(self, customer: Customer) -> dict[str, bool]:
        return self._consent_state(customer.id)

    def _consent_state(self, customer_id: int) -> dict[str, bool]:
        """Purpose -> granted, by the newest decision of each (read as plain rows: every webshop read asks)."""
        state = {purpose: False for purpose in CONSENT_PURPOSES}
        decisions = self.session.exec(select(Consent.purpose, Consent.granted)
                                      .where(Consent.customer_id == customer_id).order_by(Consent.id))
        state.update(decisions.all())
        return state

    def record_consent(self, customer: Customer, decision: ConsentIn) -> tuple[Consent, int]:
        """Record a decision; withdrawing scan storage erases the customer's passports (how many is returned)."""
        consent = Consent(customer_id=customer.id, purpose=decision.purpose, granted=decision.granted,
                          source=decision.source, recorded_by=self.principal.key_id)
        self.session.add(consent)
        self._audit("consent", "customer", customer.id,
                    f"{'gave' if decision.granted else 'withdrew'} {decision.purpose} ({decision.source})")
        erased = 0
        if decision.purpose == "scan_storage" and not decision.granted:
            ids = [p.id for p in self.passports_of(customer)]
            privacy.erase_passports(self.session, ids)
            for passport_id in ids:
                self._audit("erase", "passport", passport_id, "scan-storage consent withdrawn")
            erased = len(ids)
        self.session.commit()
        self.session.refresh(consent)
        return consent, erased

    # --- passports ---
    def passport(self, passport_id: str, purpose: str, commit: bool = True) -> PassportRecord:
        """The tenant's passport (read audited). A webshop key (no store) also needs the customer's consent to
        webshop use. `commit=False` leaves the audit entry to be committed with the answer (`save_fit_result`
        or `commit`): one write per request, and a request that fails before answering has read nothing out."""
        record = self.session.exec(select(PassportRecord).where(PassportRecord.id == passport_id,
                                                                PassportRecord.tenant_id == self.tenant_id)
                                   .options(*POINTS_WHEN_USED)).first()
        if record is None:
            raise NotFound(f"no passport {passport_id!r}: list a customer's passports with "
                           f"GET /v1/customers/{{loyalty_id}}/passports")
        if not self.principal.is_kiosk:
            if not self._consent_state(record.customer_id)["webshop"]:
                raise Forbidden("the customer has not consented to webshop use of their passport: record it with "
                                "POST /v1/customers/{loyalty_id}/consents (purpose webshop) first")
        self._unwritten_audit.append(("read", "passport", record.id, purpose))
        if commit:
            self.commit()
        return record

    def commit(self) -> None:
        """Commit, with the audit entries of reads made with `commit=False` (added only now: a query in between
        would otherwise write them early and hold the database's write lock through the fit work)."""
        for entry in self._unwritten_audit:
            self._audit(*entry)
        self._unwritten_audit.clear()
        self.session.commit()

    def passports_of(self, customer: Customer) -> list[PassportRecord]:
        """Newest first."""
        return list(self.session.exec(select(PassportRecord).where(PassportRecord.customer_id == customer.id,
                                                                   PassportRecord.tenant_id == self.tenant_id)
                                      .order_by(PassportRecord.created_at.desc(), PassportRecord.id)))

    def loyalty_id_of(self, record: PassportRecord) -> str:
        return self.session.get(Customer, record.customer_id).loyalty_id

    def add_passport(self, customer: Customer, upload: PassportUpload, source: str,
                     pressure: PressureMap | None = None) -> PassportRecord:
        """Store a scan (with its pressure map when it comes from a kiosk scan) in one transaction."""
        self._require_scan_storage(customer)
        record = PassportRecord(tenant_id=self.tenant_id, customer_id=customer.id, source=source,
                                scanned_at=as_utc(upload.passport.scanned_at), passport_json=upload.passport.to_json(),
                                left_points=points_blob(upload.points_mm["left"]),
                                right_points=points_blob(upload.points_mm["right"]))
        self.session.add(record)
        self._keep_pressure_map(record, pressure)
        self.session.commit()
        self.session.refresh(record)
        self._passport_stored(record)
        return record

    def replace_passport(self, record: PassportRecord, upload: PassportUpload,
                         pressure: PressureMap | None = None) -> PassportRecord:
        """A rescan: the same passport id gets the new scan; the fit results and the pressure map of the old one
        are dropped (an uploaded rescan has no map)."""
        self._require_scan_storage(self.session.get(Customer, record.customer_id))
        self.session.exec(delete(FitResult).where(FitResult.passport_id == record.id))
        self.session.exec(delete(PressureMapRecord).where(PressureMapRecord.passport_id == record.id))
        self._keep_pressure_map(record, pressure)
        record.passport_json = upload.passport.to_json()
        record.left_points = points_blob(upload.points_mm["left"])
        record.right_points = points_blob(upload.points_mm["right"])
        record.scanned_at = as_utc(upload.passport.scanned_at)
        record.updated_at = utc_now()
        self.session.add(record)
        self.session.commit()
        self.session.refresh(record)
        self._passport_stored(record)
        return record

    def _keep_pressure_map(self, record: PassportRecord, pressure: PressureMap | None) -> None:
        if pressure is not None:
            self.session.add(PressureMapRecord(passport_id=record.id, map_json=pressure.model_dump_json()))

    def pressure_map(self, record: PassportRecord) -> PressureMap:
        """The passport's pressure map (a record the caller has read through `passport`)."""
        picture = self.session.get(PressureMapRecord, record.id)
        if picture is None:
            raise NotFound(f"passport {record.id} has no pressure map: only kiosk scans record one (an uploaded "
                           f"passport has its pressure summary in the staff view); scan the customer at a kiosk")
        return PressureMap.model_validate_json(picture.map_json)

    def _require_scan_storage(self, customer: Customer) -> None:
        if not self.consent_in_force(customer)["scan_storage"]:
            raise Conflict(f"customer {customer.loyalty_id!r} has not consented to scan storage: record it with "
                           f"POST /v1/customers/{customer.loyalty_id}/consents (purpose scan_storage) first")

    # --- fit results and feedback ---
    def fit_results(self, record: PassportRecord) -> list[FitResult]:
        return list(self.session.exec(select(FitResult).where(FitResult.passport_id == record.id)
                                      .order_by(FitResult.id.desc())))

    def save_fit_result(self, record: PassportRecord, kind: str, request: dict, result_json: str) -> None:
        """Keep the newest answer per kind and request, and of each kind the newest FIT_RESULTS_KEPT (a webshop
        asking with ever new filters must not grow the passport without end)."""
        request_json = json.dumps(request, sort_keys=True)
        same_kind = (FitResult.passport_id == record.id, FitResult.kind == kind)
        others = (*same_kind, FitResult.request_json != request_json)
        kept = select(FitResult.id).where(*others).order_by(FitResult.id.desc()).limit(FIT_RESULTS_KEPT - 1)
        self.session.exec(delete(FitResult).where(*same_kind, FitResult.id.not_in(kept.scalar_subquery())))
        self.session.add(FitResult(passport_id=record.id, kind=kind, request_json=request_json,
                                   result_json=result_json))
        self.commit()

    def add_feedback(self, record: PassportRecord, event: FeedbackIn) -> tuple[Feedback, str, str | None]:
        size_id = self.size_id(event.sku)
        store_id = self.store_id(event.store) if event.store else self.principal.store_id
        feedback = Feedback(passport_id=record.id, event=event.event, size_id=size_id, reason=event.reason,
                            store_id=store_id, recorded_by=self.principal.key_id)
        self.session.add(feedback)
        self.session.commit()
        self.session.refresh(feedback)
        return feedback, event.sku, self.store_code(store_id)

    def feedback_of(self, record: PassportRecord) -> list[tuple[Feedback, str, str | None]]:
        rows = self.session.exec(select(Feedback, SizeVariant.sku).join(SizeVariant, SizeVariant.id == Feedback.size_id)
                                 .where(Feedback.passport_id == record.id).order_by(Feedback.id))
        return [(f, sku, self.store_code(f.store_id)) for f, sku in rows]

    # --- catalogue: sizes, stores, stock ---
    def size_id(self, sku: str) -> int:
        size_id = self.session.exec(select(SizeVariant.id).where(SizeVariant.sku == sku)).first()
        if size_id is None:
            raise InvalidInput(f"unknown SKU {sku!r}: use a SKU of the catalogue (footfit catalog list)")
        return size_id

    def stores(self) -> list[StoreRow]:
        """The tenant's stores with their kiosks' rig serials and size systems."""
        stores = self.session.exec(select(Store, TenantStore.size_system)
                                   .join(TenantStore, TenantStore.store_id == Store.id)
                                   .where(TenantStore.tenant_id == self.tenant_id).order_by(Store.code)).all()
        kiosks = self.session.exec(select(Kiosk).where(Kiosk.tenant_id == self.tenant_id)).all()
        return [StoreRow(s.code, sorted(k.rig_serial for k in kiosks if k.store_id == s.id), size_system)
                for s, size_system in stores]

    def store_id(self, code: str) -> int:
        store_id = self.session.exec(select(Store.id).join(TenantStore, TenantStore.store_id == Store.id)
                                     .where(Store.code == code, TenantStore.tenant_id == self.tenant_id)).first()
        if store_id is None:
            raise NotFound(f"no store {code!r}: GET /v1/stores lists yours")
        return store_id

    def set_stock(self, quantities: dict[int, dict[str, int]]) -> int:
        """Set stock per store id (one of the tenant's) and SKU; 0 removes it. All SKUs are checked first."""
        skus = sorted({sku for per_store in quantities.values() for sku in per_store})
        ids = dict(self.session.exec(select(SizeVariant.sku, SizeVariant.id).where(SizeVariant.sku.in_(skus))).all())
        unknown = [sku for sku in skus if sku not in ids]
        if unknown:
            raise InvalidInput(f"unknown SKUs {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}: the "
                               f"catalogue has no such size variants; import them first; nothing was changed",
                               [("sku", f"unknown SKU {sku}") for sku in unknown])
        written = 0
        for store_id, per_store in quantities.items():
            size_ids = [ids[sku] for sku in per_store]
            self.session.exec(delete(Stock).where(Stock.store_id == store_id, Stock.size_id.in_(size_ids)))
            for sku, quantity in per_store.items():
                if quantity > 0:
                    self.session.add(Stock(store_id=store_id, size_id=ids[sku], quantity=quantity))
                written += 1
        self.session.commit()
        return written

    def all_store_ids(self) -> dict[str, int]:
        return {store.code: self.store_id(store.code) for store in self.stores()}

    # --- privacy ---
    def erase_passport(self, record: PassportRecord) -> Counter:
        deleted = privacy.erase_passports(self.session, [record.id])
        self._audit("erase", "passport", record.id)
        self.session.commit()
        return deleted

    def erase_customer(self, customer: Customer) -> Counter:
        passport_ids = [p.id for p in self.passports_of(customer)]
        deleted = privacy.erase_customer(self.session, customer)
        self._audit("erase", "customer", customer.id, f"with {len(passport_ids)} passports")
        for passport_id in passport_ids:
            self._audit("erase", "passport", passport_id, "with its customer")
        self.session.commit()
        return deleted

    def export_customer(self, customer: Customer) -> bytes:
        archive = privacy.export_customer(self.session, customer)
        self._audit("export", "customer", customer.id)
        self.session.commit()
        return archive

    def passport_count(self, customer: Customer) -> int:
        return self.session.exec(select(func.count()).select_from(PassportRecord)
                                 .where(PassportRecord.customer_id == customer.id)).one()

    def _audit(self, action: str, object_type: str, object_id: str, detail: str = "") -> None:
        audit.record(self.session, self.tenant_id, self.principal.key_id, action, object_type, object_id, detail)

    # --- kiosk rigs (api/scans.py) ---
    def kiosk(self, rig_serial: str) -> Kiosk:
        """The tenant's rig; a kiosk key reaches only the rigs of its own store."""
        query = select(Kiosk).where(Kiosk.rig_serial == rig_serial, Kiosk.tenant_id == self.tenant_id)
        if self.principal.is_kiosk:
            query = query.where(Kiosk.store_id == self.principal.store_id)
        kiosk = self.session.exec(query).first()
        if kiosk is None:
            raise NotFound(f"no rig {rig_serial!r} {'in this store' if self.principal.is_kiosk else 'of yours'}: "
                           f"GET /v1/stores lists the rigs of your stores")
        return kiosk

    def check_scan_storage(self, customer: Customer) -> None:
        """Conflict unless the customer's scan-storage consent is in force (asked before the customer is scanned)."""
        self._require_scan_storage(customer)

    # --- mailing jobs (api/mailing.py) ---
    def create_mailing_job(self, model_ids: list[int]) -> MailingJob:
        job = MailingJob(tenant_id=self.tenant_id, created_by=self.principal.key_id, state="queued",
                         model_ids_json=json.dumps(model_ids))
        self.session.add(job)
        self.session.commit()
        self.session.refresh(job)
        return job

    def mailing_job(self, job_id: str) -> MailingJob:
        job = self.session.exec(select(MailingJob).where(MailingJob.id == job_id,
                                                         MailingJob.tenant_id == self.tenant_id)).first()
        if job is None:
            raise NotFound(f"no mailing job {job_id!r}: start one with POST /v1/mailings")
        return job

    def save_mailing_job(self, job: MailingJob) -> None:
        self.session.add(job)
        self.session.commit()
        self.session.refresh(job)

    def mailing_audience(self) -> tuple[list[str], int]:
        """The newest passport of every customer whose marketing consent is in force, and how many customers are
        left out for lacking that consent (never given, or withdrawn)."""
        consenting = self._marketing_consenting()
        customers = self.session.exec(select(func.count()).select_from(Customer)
                                      .where(Customer.tenant_id == self.tenant_id)).one()
        newest: dict[str, str] = {}
        for passport_id, customer_id in self.session.exec(
                select(PassportRecord.id, PassportRecord.customer_id).where(PassportRecord.tenant_id == self.tenant_id)
                .order_by(PassportRecord.created_at.desc(), PassportRecord.id)):
            if customer_id in consenting:
                newest.setdefault(customer_id, passport_id)
        return sorted(newest.values()), customers - len(consenting)

    def passports_by_ids(self, passport_ids: list[str]) -> list[PassportRecord]:
        """The tenant's passports among these ids (erased ones are simply missing)."""
        return list(self.session.exec(select(PassportRecord).where(PassportRecord.id.in_(passport_ids),
                                                                   PassportRecord.tenant_id == self.tenant_id)))

    def add_mailing_matches(self, job: MailingJob, matches: list[tuple[str, int]]) -> None:
        """(passport id, model id) pairs: the product fits that passport's customer."""
        live = set(self.session.exec(select(PassportRecord.id).where(
            PassportRecord.id.in_({p for p, _ in matches}), PassportRecord.tenant_id == self.tenant_id)))
        self.session.add_all([MailingMatch(job_id=job.id, passport_id=p, model_id=m) for p, m in matches if p in live])
        self.session.commit()

    def mailing_results(self, job: MailingJob) -> dict[int, list[str]]:
        """Per product of the job, the loyalty ids it fits, among customers whose marketing consent is still in
        force (audited: it names customers)."""
        consenting = self._marketing_consenting()
        fits: dict[int, list[str]] = {m: [] for m in json.loads(job.model_ids_json)}
        rows = self.session.exec(select(MailingMatch.model_id, Customer.id, Customer.loyalty_id)
                                 .join(PassportRecord, PassportRecord.id == MailingMatch.passport_id)
                                 .join(Customer, Customer.id == PassportRecord.customer_id)
                                 .where(MailingMatch.job_id == job.id, Customer.tenant_id == self.tenant_id)
                                 .order_by(MailingMatch.model_id, Customer.loyalty_id))
        for model_id, customer_id, loyalty_id in rows:
            if customer_id in consenting:
                fits[model_id].append(loyalty_id)
        self._audit("read", "mailing", job.id, f"results: {sum(map(len, fits.values()))} customer-product pairs")
        self.session.commit()
        return fits

    def _marketing_consenting(self) -> set[str]:
        """Ids of the tenant's customers whose newest marketing decision is a grant."""
        state: dict[str, bool] = {}
        for customer_id, granted in self.session.exec(
                select(Consent.customer_id, Consent.granted).join(Customer, Customer.id == Consent.customer_id)
                .where(Customer.tenant_id == self.tenant_id, Consent.purpose == "marketing").order_by(Consent.id)):
            state[customer_id] = granted
        return {customer_id for customer_id, granted in state.items() if granted}

    def release(self) -> None:
        """End the session's transaction, so a long response (a progress stream) holds no database connection."""
        self.session.close()
