"""The tenant's passports: read (audited, while the customer's scan-storage consent is in force; what a webshop
sees also needs their webshop consent), stored from an upload or a kiosk scan (audited), replaced by a rescan, erased;
and a kiosk scan's pressure map."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sqlalchemy import delete, func
from sqlalchemy.orm import defer
from sqlmodel import select

from api import audit, fitting, privacy
from api.models import Customer, FitResult, PassportRecord, PressureMapRecord, as_utc, utc_now
from api.passport_upload import PassportUpload, points_blob
from api.repository import Repository, consents
from core.errors import Forbidden, NotFound
from fitcore.scan.pressure import PressureMap

# A passport's points (~300 kB) are read only when used: most requests are answered from the points kept in
# memory by the fit service (api/fitting.py) or need none.
POINTS_WHEN_USED = (defer(PassportRecord.left_points), defer(PassportRecord.right_points))


def get(repo: Repository, passport_id: str) -> PassportRecord:
    """The passport whatever its customer consented to: for erasing it, which needs no consent."""
    record = repo.session.exec(select(PassportRecord).where(PassportRecord.id == passport_id)
                               .options(*POINTS_WHEN_USED)).first()
    if record is None or repo.principal.customer_id not in (None, record.customer_id):  # a session: its customer's only
        raise NotFound(f"no passport {passport_id!r}: list a customer's passports with "
                       f"GET /v1/customers/{{loyalty_id}}/passports")
    return record


def read(repo: Repository, passport_id: str, purpose: str, commit: bool = True,
         webshop_use: bool = True) -> PassportRecord:
    """The passport, its read audited for `purpose`. Webshop consent governs webshop use only: `webshop_use=False`
    for the staff's reads (staff view, points, pressure map) and a rescan, which any key may do without it.
    `commit=False` leaves the audit entry to be committed with the answer (fit_results.save or repo.commit): one
    write per request."""
    record = get(repo, passport_id)
    _require_consent(repo, record.customer_id, webshop_use)
    repo.audit_at_commit("read", "passport", record.id, audit.about(record.customer_id, purpose))
    if commit:
        repo.commit()
    return record


def listing(repo: Repository, customer: Customer) -> list[PassportRecord]:
    """The customer's passports to show (newest first): their sizes are webshop use, as a read's are."""
    _require_consent(repo, customer.id, webshop_use=True)
    return of_customer(repo, customer)


def _require_consent(repo: Repository, customer_id: str, webshop_use: bool) -> None:
    """Forbidden once scan-storage consent is withdrawn (the passports wait for erasure, unused), and for webshop use
    by a key that is not a kiosk's without webshop consent."""
    consent = consents.in_force(repo, customer_id)
    if not consent["scan_storage"]:
        raise Forbidden("the customer withdrew scan-storage consent: their passports are no longer used and wait for "
                        "erasure by the privacy job (`footfit privacy purge`), or erase them now with a key holding "
                        "passports:erase")
    if webshop_use and not repo.principal.is_kiosk and not consent["webshop"]:
        raise Forbidden("the customer has not consented to webshop use of their passport: record it with "
                        "POST /v1/customers/{loyalty_id}/consents (purpose webshop) first")


def of_customer(repo: Repository, customer: Customer) -> list[PassportRecord]:
    """Newest first."""
    return list(repo.session.exec(select(PassportRecord).where(PassportRecord.customer_id == customer.id)
                                  .order_by(PassportRecord.created_at.desc(), PassportRecord.id)))


def by_ids(repo: Repository, passport_ids: list[str]) -> list[PassportRecord]:
    """The tenant's passports among these ids (erased ones are simply missing)."""
    return list(repo.session.exec(select(PassportRecord).where(PassportRecord.id.in_(passport_ids))))


def count_of(repo: Repository, customer: Customer) -> int:
    return repo.session.exec(select(func.count()).select_from(PassportRecord)
                             .where(PassportRecord.customer_id == customer.id)).one()


def loyalty_id_of(repo: Repository, record: PassportRecord) -> str:
    return repo.session.get(Customer, record.customer_id).loyalty_id


def add(repo: Repository, customer: Customer, upload: PassportUpload, source: str,
        pressure: PressureMap | None = None,
        before_commit: Callable[[PassportRecord], None] = lambda record: None) -> PassportRecord:
    """Store a scan (with its pressure map when it comes from a kiosk scan) in one transaction, with what
    `before_commit` writes beside it (a kiosk scan's job, api/scans.py)."""
    consents.require_scan_storage(repo, customer)
    record = PassportRecord(tenant_id=repo.tenant_id, customer_id=customer.id, source=source,
                            scanned_at=as_utc(upload.passport.scanned_at), passport_json=upload.passport.to_json(),
                            left_points=points_blob(upload.points_mm["left"]),
                            right_points=points_blob(upload.points_mm["right"]))
    repo.session.add(record)
    _keep_pressure_map(repo, record, pressure)
    repo.audit("create", "passport", record.id, audit.about(customer.id, f"source {source}"))
    before_commit(record)
    repo.session.commit()
    repo.session.refresh(record)
    repo.passport_stored(record)
    return record


def replace(repo: Repository, record: PassportRecord, upload: PassportUpload, pressure: PressureMap | None = None,
            before_commit: Callable[[PassportRecord], None] = lambda record: None) -> PassportRecord:
    """A rescan: the same passport id gets the new scan; the fit results and the pressure map of the old one are
    dropped (an uploaded rescan has no map). `before_commit` as for `add`."""
    consents.require_scan_storage(repo, repo.session.get(Customer, record.customer_id))
    repo.session.exec(delete(FitResult).where(FitResult.passport_id == record.id))
    repo.session.exec(delete(PressureMapRecord).where(PressureMapRecord.passport_id == record.id))
    _keep_pressure_map(repo, record, pressure)
    record.passport_json = upload.passport.to_json()
    record.left_points = points_blob(upload.points_mm["left"])
    record.right_points = points_blob(upload.points_mm["right"])
    record.scanned_at = as_utc(upload.passport.scanned_at)
    record.updated_at = utc_now()
    repo.session.add(record)
    before_commit(record)
    repo.session.commit()
    repo.session.refresh(record)
    repo.passport_stored(record)
    return record


def _keep_pressure_map(repo: Repository, record: PassportRecord, pressure: PressureMap | None) -> None:
    if pressure is not None:
        repo.session.add(PressureMapRecord(passport_id=record.id, map_json=pressure.model_dump_json()))


def pressure_map(repo: Repository, record: PassportRecord) -> PressureMap:
    """The pressure map of a passport read through `read`."""
    picture = repo.session.get(PressureMapRecord, record.id)
    if picture is None:
        raise NotFound(f"passport {record.id} has no pressure map: only kiosk scans record one (an uploaded "
                       f"passport has its pressure summary in the staff view); scan the customer at a kiosk")
    return PressureMap.model_validate_json(picture.map_json)


def erase(repo: Repository, record: PassportRecord) -> Counter:
    """Erase the passport with everything derived from it (api/privacy.py); rows deleted per table."""
    deleted = privacy.erase_passports(repo.session, [record.id])
    repo.audit("erase", "passport", record.id, audit.about(record.customer_id, "on request"))
    repo.session.commit()
    fitting.forget([record.id])
    return deleted
