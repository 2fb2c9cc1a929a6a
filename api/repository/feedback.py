"""What happened with the sizes a passport's customer was shown: recommended, tried (kept or not, and where it was
wrong), chosen, bought, returned or exchanged (and why), kept past the return window; and the tenant's events as the
learner reads them (`for_learning`).

Events name the operator's sizes (what the learner learns about); callers send and read the tenant's SKUs. The
source is the recording key's: a store's key records store events (in its store), a tenant key webshop events.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from api.models import AssortmentItem, Feedback, PassportRecord, as_utc, utc_now
from api.privacy import newest_decisions, sku_as_sold
from api.repository import Repository, stores
from api.schemas import FeedbackIn, FeedbackOut, FitComplaint
from core.errors import InvalidInput
from shoe_db.models import SizeVariant, Store


@dataclass(frozen=True)
class LearningEvent:
    """One event as the learner reads it: the operator's model and size (the learner knows no tenant's SKUs), and
    the customer by the service's public id (personal data: it stays inside the tenant), never the loyalty id."""

    id: int
    passport_id: str
    customer_id: str
    event: str
    model_id: int
    size_id: int
    width: str  # the size's width fitting
    source: str  # store | webshop
    kept: bool | None  # tried only
    complaint_region: str | None
    complaint_direction: str | None
    reason: str | None  # returned and exchanged only
    store: str | None  # the store's code
    recommended_size_id: int | None
    learning_version: str | None
    advice_arm: str | None
    occurred_at: datetime
    recorded_at: datetime


def add(repo: Repository, record: PassportRecord, event: FeedbackIn) -> FeedbackOut:
    """Store the event for a passport read through passports.read; refused (422) for a SKU the tenant does not sell,
    a source or store that is not the calling key's, a recommended size of another model."""
    source, store_id = _source(repo, event), _store_id(repo, event)
    size_id = _size_id(repo, event.sku, "sku")
    recommended_size_id = None
    if event.recommended_sku is not None:
        recommended_size_id = _size_id(repo, event.recommended_sku, "recommended_sku")
        _require_same_model(repo, size_id, recommended_size_id, event)
    now = utc_now()
    complaint = event.complaint
    stored = Feedback(passport_id=record.id, event=event.event, size_id=size_id, source=source, kept=event.kept,
                      complaint_region=complaint.region if complaint else None,
                      complaint_direction=complaint.direction if complaint else None, reason=event.reason,
                      store_id=store_id, recommended_size_id=recommended_size_id,
                      learning_version=event.learning_version, advice_arm=event.advice_arm,
                      occurred_at=as_utc(event.occurred_at) if event.occurred_at else now, recorded_at=now,
                      recorded_by=repo.principal.key_id)
    repo.session.add(stored)
    repo.session.commit()
    repo.session.refresh(stored)
    return _as_sold(repo, stored)


def of_passport(repo: Repository, record: PassportRecord) -> list[FeedbackOut]:
    """The passport's events in the order they happened."""
    rows = repo.session.exec(select(Feedback).where(Feedback.passport_id == record.id)
                             .order_by(Feedback.occurred_at, Feedback.id))
    return [_as_sold(repo, stored) for stored in rows]


def for_learning(repo: Repository, since: datetime | None = None) -> list[LearningEvent]:
    """The tenant's events stored since `since` (all of them without), in the order they were stored, of customers
    whose scan-storage consent is in force (the others' data waits for erasure, unused). Stored, not happened: a
    return posted today about a purchase of last month is new to a learner that ran yesterday. Audited: one read
    per customer whose events it lists."""
    query = (select(Feedback.id, Feedback.passport_id, PassportRecord.customer_id, Feedback.event,
                    SizeVariant.model_id, Feedback.size_id, SizeVariant.width, Feedback.source, Feedback.kept,
                    Feedback.complaint_region, Feedback.complaint_direction, Feedback.reason, Store.code.label("store"),
                    Feedback.recommended_size_id, Feedback.learning_version, Feedback.advice_arm,
                    Feedback.occurred_at, Feedback.recorded_at)
             .join(PassportRecord, PassportRecord.id == Feedback.passport_id)
             .join(SizeVariant, SizeVariant.id == Feedback.size_id)
             .outerjoin(Store, Store.id == Feedback.store_id)
             .order_by(Feedback.id))
    if since is not None:
        query = query.where(Feedback.recorded_at >= as_utc(since))
    consenting = {customer_id for customer_id, granted
                  in newest_decisions(repo.session, repo.tenant_id, "scan_storage").items() if granted}
    events = [LearningEvent(**{**row._mapping, "occurred_at": as_utc(row.occurred_at),
                               "recorded_at": as_utc(row.recorded_at)})
              for row in repo.session.exec(query) if row.customer_id in consenting]
    for customer_id, count in sorted(Counter(e.customer_id for e in events).items()):
        repo.audit("read", "customer", customer_id, f"{count} feedback events for learning")
    repo.commit()
    return events


def _source(repo: Repository, event: FeedbackIn) -> str:
    source = "store" if repo.principal.is_kiosk else "webshop"
    if event.source not in (None, source):
        if repo.principal.is_kiosk:
            raise InvalidInput("a key of a store records store events: record webshop events with your webshop's "
                               "tenant key, or leave source out", [("body.source", "not this key's source")])
        raise InvalidInput("a tenant key records webshop events: record a store's events with a key of that store "
                           "(footfit keys create --store), or leave source out",
                           [("body.source", "not this key's source")])
    return source


def _store_id(repo: Repository, event: FeedbackIn) -> int | None:
    """The named store (one of the tenant's, else 404); a store's key records in its own store only."""
    own = repo.principal.store_id
    if event.store is None:
        return own
    store_id = stores.id_of(repo, event.store)
    if own is not None and store_id != own:
        raise InvalidInput(f"a key of store {stores.code_of(repo, own)} records that store's events, not "
                           f"{event.store}'s: leave store out", [("body.store", "not this key's store")])
    return store_id


def _size_id(repo: Repository, sku: str, field: str) -> int:
    """The operator's size the tenant sells under this SKU; else the size whose operator's SKU it is, if the tenant
    sells it (a tenant's own SKU wins where the two name different sizes)."""
    size_id = repo.session.exec(select(AssortmentItem.size_id).where(AssortmentItem.sku == sku)).first()
    if size_id is None:
        size_id = repo.session.exec(select(AssortmentItem.size_id)
                                    .join(SizeVariant, SizeVariant.id == AssortmentItem.size_id)
                                    .where(SizeVariant.sku == sku)).first()
    if size_id is None:
        raise InvalidInput(f"unknown SKU {sku!r} in {field}: send a SKU of your assortment, as recommendations answer "
                           f"it and your product file (POST /v1/catalog/import) names it",
                           [(f"body.{field}", f"unknown SKU {sku}")])
    return size_id


def _require_same_model(repo: Repository, size_id: int, recommended_size_id: int, event: FeedbackIn) -> None:
    models = {repo.session.get(SizeVariant, i).model_id for i in (size_id, recommended_size_id)}
    if len(models) > 1:
        raise InvalidInput(f"recommended_sku {event.recommended_sku!r} is a size of another shoe than sku "
                           f"{event.sku!r}: send the size the advice gave for this shoe",
                           [("body.recommended_sku", "another shoe")])


def _as_sold(repo: Repository, stored: Feedback) -> FeedbackOut:
    """The stored event with its sizes under the tenant's SKUs and its store's code."""
    complaint, recommended = None, stored.recommended_size_id
    if stored.complaint_region is not None:
        complaint = FitComplaint(region=stored.complaint_region, direction=stored.complaint_direction)
    return FeedbackOut(id=stored.id, event=stored.event, sku=sku_as_sold(repo.session, repo.tenant_id, stored.size_id),
                       source=stored.source, kept=stored.kept, complaint=complaint, reason=stored.reason,
                       store=stores.code_of(repo, stored.store_id),
                       recommended_sku=None if recommended is None else sku_as_sold(repo.session, repo.tenant_id,
                                                                                    recommended),
                       learning_version=stored.learning_version, advice_arm=stored.advice_arm,
                       occurred_at=as_utc(stored.occurred_at), recorded_at=as_utc(stored.recorded_at))
