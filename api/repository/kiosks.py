"""The tenant's scanner rigs, for the kiosk scans (api/scans.py)."""

from __future__ import annotations

from sqlmodel import select

from api.models import Kiosk
from api.repository import Repository
from core.errors import NotFound


def get(repo: Repository, rig_serial: str) -> Kiosk:
    """The rig; a kiosk key reaches only the rigs of its own store."""
    query = select(Kiosk).where(Kiosk.rig_serial == rig_serial)
    if repo.principal.is_kiosk:
        query = query.where(Kiosk.store_id == repo.principal.store_id)
    kiosk = repo.session.exec(query).first()
    if kiosk is None:
        raise NotFound(f"no rig {rig_serial!r} {'in this store' if repo.principal.is_kiosk else 'of yours'}: "
                       f"GET /v1/stores lists the rigs of your stores")
    return kiosk
