"""What happened with a shoe a passport's customer was shown: recommended, tried, chosen, bought, returned."""

from __future__ import annotations

from sqlmodel import select

from api.models import Feedback, PassportRecord
from api.repository import Repository, stores
from api.schemas import FeedbackIn
from core.errors import InvalidInput
from shoe_db.models import SizeVariant


def add(repo: Repository, record: PassportRecord, event: FeedbackIn) -> tuple[Feedback, str, str | None]:
    """The stored event with its SKU and store code (by default the kiosk key's store)."""
    size_id = _size_id(repo, event.sku)
    store_id = stores.id_of(repo, event.store) if event.store else repo.principal.store_id
    feedback = Feedback(passport_id=record.id, event=event.event, size_id=size_id, reason=event.reason,
                        store_id=store_id, recorded_by=repo.principal.key_id)
    repo.session.add(feedback)
    repo.session.commit()
    repo.session.refresh(feedback)
    return feedback, event.sku, stores.code_of(repo, store_id)


def of_passport(repo: Repository, record: PassportRecord) -> list[tuple[Feedback, str, str | None]]:
    rows = repo.session.exec(select(Feedback, SizeVariant.sku).join(SizeVariant, SizeVariant.id == Feedback.size_id)
                             .where(Feedback.passport_id == record.id).order_by(Feedback.id))
    return [(f, sku, stores.code_of(repo, f.store_id)) for f, sku in rows]


def _size_id(repo: Repository, sku: str) -> int:
    size_id = repo.session.exec(select(SizeVariant.id).where(SizeVariant.sku == sku)).first()
    if size_id is None:
        raise InvalidInput(f"unknown SKU {sku!r}: use a SKU of the catalogue (footfit catalog list)")
    return size_id
