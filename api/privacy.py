"""Privacy operations on personal data: the erasure cascade (a passport, a customer), the export of everything
about a customer, and the per-tenant retention purge.

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

from sqlalchemy import delete
from sqlmodel import Session, select

from api import audit
from api.models import (
    Consent,
    Customer,
    Feedback,
    FitResult,
    MailingMatch,
    PassportRecord,
    PressureMapRecord,
    Tenant,
    utc_now,
)
from api.passport_upload import points_from_blob
from core.mesh import write_points
from core.vocabulary import SIDES

PASSPORT_DERIVED = (FitResult, Feedback, MailingMatch, PressureMapRecord)  # keyed by passport_id, erased with it
EXPORTED_AS_FILES = (PressureMapRecord,)  # exported as a file beside the passport, not as rows of customer.json
CUSTOMER_OWNED = (Consent,)  # rows keyed by customer_id, erased with their customer


def erase_passports(session: Session, passport_ids: list[str]) -> Counter:
    """Delete the passports and everything derived from them; rows deleted per table."""
    deleted: Counter = Counter()
    if not passport_ids:
        return deleted
    for table in PASSPORT_DERIVED:
        deleted[table.__tablename__] += session.exec(delete(table).where(table.passport_id.in_(passport_ids))).rowcount
    deleted["passport"] += session.exec(delete(PassportRecord).where(PassportRecord.id.in_(passport_ids))).rowcount
    return deleted


def erase_customer(session: Session, customer: Customer) -> Counter:
    """Delete the customer, their passports with everything derived, and their consent records."""
    ids = list(session.exec(select(PassportRecord.id).where(PassportRecord.customer_id == customer.id)))
    deleted = erase_passports(session, ids)
    for table in CUSTOMER_OWNED:
        deleted[table.__tablename__] += session.exec(delete(table).where(table.customer_id == customer.id)).rowcount
    deleted["customer"] += session.exec(delete(Customer).where(Customer.id == customer.id)).rowcount
    return deleted


def export_customer(session: Session, customer: Customer) -> bytes:
    """A zip: customer.json (consent history, passports' records, feedback, fit results, mailing matches) and each
    passport's passport.json, left.ply, right.ply and (kiosk scans) pressure_map.json under passports/<id>/."""
    passports = list(session.exec(select(PassportRecord).where(PassportRecord.customer_id == customer.id)
                                  .order_by(PassportRecord.created_at.desc())))
    ids = [p.id for p in passports]
    consents = session.exec(select(Consent).where(Consent.customer_id == customer.id).order_by(Consent.id))
    derived = {table.__tablename__: [row.model_dump(mode="json") for row in session.exec(
        select(table).where(table.passport_id.in_(ids)).order_by(table.id))]
        for table in PASSPORT_DERIVED if table not in EXPORTED_AS_FILES}
    record = {
        "loyalty_id": customer.loyalty_id,
        "created_at": customer.created_at.isoformat(),
        "consent": [c.model_dump(mode="json", exclude={"id", "customer_id"}) for c in consents],
        "passports": [p.model_dump(mode="json", exclude={"passport_json", "left_points", "right_points",
                                                          "tenant_id", "customer_id"}) for p in passports],
        **derived,
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
    passports: int
    deleted: Counter


def purge_expired(session: Session, now: datetime | None = None) -> list[PurgeResult]:
    """Erase every passport not rescanned within its tenant's retention period (consent records stay, as proof);
    each erasure is audited as a purge."""
    now = now or utc_now()
    results = []
    for tenant in session.exec(select(Tenant).order_by(Tenant.name)).all():
        cutoff = now - timedelta(days=tenant.retention_days)
        ids = list(session.exec(select(PassportRecord.id).where(PassportRecord.tenant_id == tenant.id,
                                                                PassportRecord.updated_at < cutoff)))
        deleted = erase_passports(session, ids)
        for passport_id in ids:
            audit.record(session, tenant.id, "cli:privacy-purge", "purge", "passport", passport_id,
                         f"older than {tenant.retention_days} days")
        results.append(PurgeResult(tenant.name, tenant.retention_days, len(ids), deleted))
    session.commit()
    return results
