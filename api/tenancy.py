"""Operator-side setup of tenants: create a tenant, give it stores (catalogue stores hold the stock) and kiosks,
set its retention period. The CLI calls these; requests never do (they act inside one tenant)."""

from __future__ import annotations

from sqlmodel import Session, select

from api.models import Kiosk, Tenant, TenantStore
from core.errors import ConfigError
from core.sizes import STORE_SIZE_SYSTEMS
from shoe_db.models import Store


def create_tenant(session: Session, name: str, retention_days: int) -> Tenant:
    name = name.strip()
    if not name:
        raise ConfigError("a tenant needs a name")
    if retention_days <= 0:
        raise ConfigError(f"the retention period must be positive days, got {retention_days}")
    if session.exec(select(Tenant).where(Tenant.name == name)).first():
        raise ConfigError(f"tenant {name!r} exists already: `footfit tenants list` shows them")
    tenant = Tenant(name=name, retention_days=retention_days)
    session.add(tenant)
    session.commit()
    session.refresh(tenant)
    return tenant


def set_retention(session: Session, name: str, retention_days: int) -> Tenant:
    if retention_days <= 0:
        raise ConfigError(f"the retention period must be positive days, got {retention_days}")
    tenant = tenant_named(session, name)
    tenant.retention_days = retention_days
    session.add(tenant)
    session.commit()
    session.refresh(tenant)
    return tenant


def list_tenants(session: Session) -> list[tuple[Tenant, list[str]]]:
    """Every tenant with the codes of its stores."""
    rows = session.exec(select(TenantStore.tenant_id, Store.code).join(Store, Store.id == TenantStore.store_id))
    stores: dict[int, list[str]] = {}
    for tenant_id, code in rows:
        stores.setdefault(tenant_id, []).append(code)
    return [(t, sorted(stores.get(t.id, []))) for t in session.exec(select(Tenant).order_by(Tenant.name))]


def add_store(session: Session, tenant: str, code: str, size_system: str | None = None) -> Store:
    """Give the tenant a store: the catalogue's store of that code (created when new), unless another owns it.
    `size_system` (default: eu for a new store, unchanged for one the tenant has) is how its kiosk shows sizes."""
    _check_size_system(size_system)
    tenant_row = tenant_named(session, tenant)
    store = session.exec(select(Store).where(Store.code == code)).first()
    if store is None:
        store = Store(code=code)
        session.add(store)
        session.flush()
    owner = session.get(TenantStore, store.id)
    if owner is not None and owner.tenant_id != tenant_row.id:
        raise ConfigError(f"store {code!r} belongs to another tenant: a store has one owner")
    if owner is None:
        owner = TenantStore(store_id=store.id, tenant_id=tenant_row.id)
    if size_system is not None:
        owner.size_system = size_system
    session.add(owner)
    session.commit()
    session.refresh(store)
    return store


def set_size_system(session: Session, tenant: str, code: str, size_system: str) -> TenantStore:
    """Change the size system of one of the tenant's stores."""
    _check_size_system(size_system)
    owner = session.get(TenantStore, store_of_tenant(session, tenant_named(session, tenant), code))
    owner.size_system = size_system
    session.add(owner)
    session.commit()
    session.refresh(owner)
    return owner


def _check_size_system(size_system: str | None) -> None:
    if size_system is not None and size_system not in STORE_SIZE_SYSTEMS:
        raise ConfigError(f"unknown size system {size_system!r}: use one of {', '.join(STORE_SIZE_SYSTEMS)}")


def add_kiosk(session: Session, tenant: str, store: str, rig_serial: str, name: str = "") -> Kiosk:
    tenant_row = tenant_named(session, tenant)
    store_id = store_of_tenant(session, tenant_row, store)
    if session.exec(select(Kiosk).where(Kiosk.rig_serial == rig_serial)).first():
        raise ConfigError(f"rig {rig_serial!r} is registered already: one rig is one kiosk")
    kiosk = Kiosk(tenant_id=tenant_row.id, store_id=store_id, rig_serial=rig_serial, name=name)
    session.add(kiosk)
    session.commit()
    session.refresh(kiosk)
    return kiosk


def tenant_named(session: Session, name: str) -> Tenant:
    tenant = session.exec(select(Tenant).where(Tenant.name == name)).first()
    if tenant is None:
        raise ConfigError(f"no tenant {name!r}: create it with `footfit tenants create {name}`")
    return tenant


def store_of_tenant(session: Session, tenant: Tenant, code: str) -> int:
    """The id of the tenant's store `code`."""
    row = session.exec(select(Store.id).join(TenantStore, TenantStore.store_id == Store.id)
                       .where(Store.code == code, TenantStore.tenant_id == tenant.id)).first()
    if row is None:
        raise ConfigError(f"tenant {tenant.name!r} has no store {code!r}: add it with "
                          f"`footfit stores add --tenant {tenant.name} {code}`")
    return row
