"""Privacy operations on personal data: the erasure cascade (a passport, a customer), the export of everything
about a customer, and the purge (the scheduled privacy job): passports past their tenant's retention period, and
those whose customer withdrew scan-storage consent.

What is derived from a passport is listed once (`PASSPORT_DERIVED`), what belongs to a customer besides their
passports once (`CUSTOMER_OWNED`): a new table of personal data joins the cascade by joining one of these lists.
Callers pass records the repository has already scoped to the caller's tenant.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, or_, update
from sqlmodel import Session, select

from api import audit
from api.models import (
    AssortmentItem,
    Consent,
    Customer,
    CustomerPreferenceRecord,
    Feedback,
    FitResult,
    LearnedStateRecord,
    MailingMatch,
    PassportRecord,
    PressureMapRecord,
    ScanJobRecord,
    Tenant,
    utc_now,
)
from api.passport_upload import points_from_blob
from api import fit_index_rows
from core.mesh import write_points
from core.vocabulary import SIDES
from shoe_db.models import SizeVariant, Store

PASSPORT_DERIVED = (FitResult, Feedback, MailingMatch, PressureMapRecord)  # keyed by passport_id, erased with it
EXPORTED_AS_FILES = (PressureMapRecord,)  # exported as a file beside the passport, not as rows of customer.json
CUSTOMER_OWNED = (Consent, CustomerPreferenceRecord)  # rows keyed by customer_id, erased with their customer


def erase_passports(session: Session, passport_ids: list[str]) -> Counter:
    """Delete the passports and everything derived from them; rows deleted per table."""
    deleted: Counter = Counter()
    if not passport_ids:
        return deleted
    for table in PASSPORT_DERIVED:
        deleted[table.__tablename__] += session.exec(delete(table).where(table.passport_id.in_(passport_ids))).rowcount
    deleted["fit_index_slot"] += fit_index_rows.drop_passports(session, passport_ids)
    deleted["passport"] += session.exec(delete(PassportRecord).where(PassportRecord.id.in_(passport_ids))).rowcount
    return deleted


def erase_customer(session: Session, customer: Customer) -> Counter:
    """Delete the customer, their passports with everything derived, and their consent records."""
    ids = list(session.exec(select(PassportRecord.id).where(PassportRecord.customer_id == customer.id)))
    deleted = erase_passports(session, ids)
    _forget_scans(session, customer.id)
    for table in CUSTOMER_OWNED:
        deleted[table.__tablename__] += session.exec(delete(table).where(table.customer_id == customer.id)).rowcount
    deleted["customer"] += session.exec(delete(Customer).where(Customer.id == customer.id)).rowcount
    return deleted


def _forget_scans(session: Session, customer_id: str) -> None:
    """The customer's kiosk scans stop and no longer name them: one not yet taken by its rig's agent is cancelled at
    once, a running one at the agent's next report, and its passport, should the agent still send it, is refused
    (api/scans.py)."""
    erased = "the customer was erased; nothing was kept"
    scan = ScanJobRecord
    session.exec(update(scan).where(scan.customer_id == customer_id, scan.state == "running", scan.agent.is_(None))
                 .values(state="cancelled", message=erased, finished_at=utc_now(), preview=None, eta_s=None))
    session.exec(update(scan).where(scan.customer_id == customer_id, scan.state == "running")
                 .values(cancel_requested=True, message=erased))
    session.exec(update(scan).where(scan.customer_id == customer_id)
                 .values(customer_id=None, loyalty_id="", preview=None, version=scan.version + 1))


def export_customer(session: Session, customer: Customer) -> bytes:
    """A zip: customer.json (consent history, passports' records, feedback, fit results, mailing matches, the
    preferences learned from their feedback, the audit trail) and each passport's passport.json, left.ply, right.ply
    and (kiosk scans) pressure_map.json under passports/<id>/."""
    passports = list(session.exec(select(PassportRecord).where(PassportRecord.customer_id == customer.id)
                                  .order_by(PassportRecord.created_at.desc())))
    ids = [p.id for p in passports]
    consents = session.exec(select(Consent).where(Consent.customer_id == customer.id).order_by(Consent.id))
    derived = {table.__tablename__: [_as_the_customer_knows_it(session, customer.tenant_id,
                                                               row.model_dump(mode="json"))
                                     for row in session.exec(select(table).where(table.passport_id.in_(ids))
                                                             .order_by(table.id))]
               for table in PASSPORT_DERIVED if table not in EXPORTED_AS_FILES}
    record = {
        "loyalty_id": customer.loyalty_id,
        "created_at": customer.created_at.isoformat(),
        "consent": [c.model_dump(mode="json", exclude={"id", "customer_id"}) for c in consents],
        "passports": [p.model_dump(mode="json", exclude={"passport_json", "left_points", "right_points",
                                                          "tenant_id", "customer_id"}) for p in passports],
        **derived,
        "learned_preferences": [
            {**row.model_dump(mode="json", exclude={"id", "tenant_id", "customer_id", "state_id"}),
             "learning_version": version}
            for row, version in session.exec(
                select(CustomerPreferenceRecord, LearnedStateRecord.version)
                .join(LearnedStateRecord, LearnedStateRecord.id == CustomerPreferenceRecord.state_id)
                .where(CustomerPreferenceRecord.customer_id == customer.id).order_by(CustomerPreferenceRecord.id))],
        "audit": [e.model_dump(mode="json", exclude={"id", "tenant_id"})
                  for e in audit.customer_trail(session, customer.tenant_id, customer.id)],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("customer.json", json.dumps(record, indent=1))
        for p in passports:
            archive.writestr(f"passports/{p.id}/passport.json", p.passport_json)
            picture = session.get(PressureMapRecord, p.id)
            if picture is not None:
                archive.writestr(f"passports/{p.id}/pressure_map.json", picture.map_json)
            for side in SIDES:
                points = points_from_blob(getattr(p, f"{side}_points"))
                archive.writestr(f"passports/{p.id}/{side}.ply", ply_bytes(points))
    return buffer.getvalue()


def _as_the_customer_knows_it(session: Session, tenant_id: int, row: dict) -> dict:
    """A row with the catalogue's internal ids replaced by what is printed on the box and the receipt: the sizes'
    SKUs as the tenant sells them and the store's code."""
    for id_column, sku_column in (("size_id", "sku"), ("recommended_size_id", "recommended_sku")):
        if id_column in row:
            size_id = row.pop(id_column)
            row[sku_column] = None if size_id is None else sku_as_sold(session, tenant_id, size_id)
    if "store_id" in row:
        store_id = row.pop("store_id")
        row["store"] = None if store_id is None else session.get(Store, store_id).code
    return row


def sku_as_sold(session: Session, tenant_id: int, size_id: int) -> str:
    """The tenant's SKU of one of the operator's sizes; the operator's SKU where the tenant no longer sells it."""
    sold = session.exec(select(AssortmentItem.sku).where(AssortmentItem.tenant_id == tenant_id,
                                                         AssortmentItem.size_id == size_id)).first()
    return sold if sold is not None else session.get(SizeVariant, size_id).sku


def ply_bytes(points_mm) -> bytes:
    """A point cloud as the PLY a scan writes (core.mesh.write_points)."""
    with tempfile.TemporaryDirectory(prefix="footfit-ply-") as folder:
        path = Path(folder) / "points.ply"
        write_points(path, points_mm)
        return path.read_bytes()


@dataclass(frozen=True)
class PurgeResult:
    tenant: str
    retention_days: int
    passports: int  # erased: past the retention period, or their customer withdrew scan-storage consent
    deleted: Counter  # rows per table, the ended kiosk scans' (scan_job) among them


def purge_expired(session: Session, scan_rows_kept_days: int, now: datetime | None = None) -> list[PurgeResult]:
    """The scheduled privacy job: erase every passport not rescanned within its tenant's retention period, and every
    passport and learned preference of a customer whose scan-storage consent is withdrawn (recorded by a key that
    may not erase); each erasure is audited as a purge. Consent records stay, as proof. The rows of kiosk scans that
    ended `scan_rows_kept_days` ago go too (setting service.scan_rows_kept_days)."""
    now = now or utc_now()
    scans_ended_before = now - timedelta(days=scan_rows_kept_days)
    results = []
    for tenant in session.exec(select(Tenant).order_by(Tenant.name)).all():
        cutoff = now - timedelta(days=tenant.retention_days)
        withdrawn = {c for c, granted in newest_decisions(session, tenant.id, "scan_storage").items() if not granted}
        why = {passport_id: audit.about(customer_id, "scan-storage consent withdrawn" if customer_id in withdrawn
                                        else f"older than {tenant.retention_days} days")
               for passport_id, customer_id in session.exec(
                   select(PassportRecord.id, PassportRecord.customer_id)
                   .where(PassportRecord.tenant_id == tenant.id,
                          or_(PassportRecord.updated_at < cutoff, PassportRecord.customer_id.in_(sorted(withdrawn)))))}
        deleted = erase_passports(session, list(why))
        for passport_id, detail in why.items():
            audit.record(session, tenant.id, "cli:privacy-purge", "purge", "passport", passport_id, detail)
        learned = sorted(set(session.exec(select(CustomerPreferenceRecord.customer_id)
                                          .where(CustomerPreferenceRecord.customer_id.in_(sorted(withdrawn))))))
        deleted["customer_preference"] += session.exec(delete(CustomerPreferenceRecord).where(
            CustomerPreferenceRecord.customer_id.in_(learned))).rowcount
        for customer_id in learned:
            audit.record(session, tenant.id, "cli:privacy-purge", "purge", "customer", customer_id,
                         "learned preferences: scan-storage consent withdrawn")
        deleted["scan_job"] += session.exec(delete(ScanJobRecord).where(
            ScanJobRecord.tenant_id == tenant.id, ScanJobRecord.state != "running",
            ScanJobRecord.finished_at < scans_ended_before)).rowcount
        results.append(PurgeResult(tenant.name, tenant.retention_days, len(why), deleted))
    session.commit()
    return results


def newest_decisions(session: Session, tenant_id: int, purpose: str) -> dict[str, bool]:
    """Customer id -> their newest decision for `purpose` (granted or withdrawn), among the tenant's customers who
    ever decided: the decision in force."""
    decisions: dict[str, bool] = {}
    for customer_id, granted in session.exec(
            select(Consent.customer_id, Consent.granted).join(Customer, Customer.id == Consent.customer_id)
            .where(Customer.tenant_id == tenant_id, Consent.purpose == purpose).order_by(Consent.id)):
        decisions[customer_id] = granted
    return decisions
