"""API keys: created with a tenant (and, for a kiosk, a store), shown once, stored as the SHA-256 of a random
secret, scoped, expiring, revocable; and the check every request passes (`authenticate`, `require_scope`).

A key reads `ff_<key id>_<secret>`: the key id (12 hex digits) finds the row, the secret (256 random bits) is
compared by hash in constant time. The key id is what the audit log records as the actor.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from api.models import ApiKey, utc_now
from api.tenancy import store_of_tenant, tenant_named
from core.errors import ConfigError, Forbidden, Unauthenticated

SCOPES = {
    "scans:write": "start kiosk scans, upload and rescan passports",
    "scans:read": "the staff view of a passport: its point clouds",
    "customers:write": "create customers, record or withdraw their consent",
    "passports:read": "customers, consent, passports (measurements, sizes, fit results), feedback",
    "recommendations:read": "recommendations, the size of a product, try-on",
    "feedback:write": "record feedback events (recommended, tried, chosen, bought, returned)",
    "passports:export": "export everything about a customer",
    "passports:erase": "erase a passport or a customer with everything derived",
    "catalog:write": "import catalogue data, update the stock of the tenant's stores",
    "batch:run": "run mailing batch jobs",
}
KIOSK_DENIED = frozenset({"passports:export", "passports:erase", "catalog:write", "batch:run"})
_PREFIX = "ff"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key of one tenant, bound to a store for a kiosk."""

    key_id: str
    tenant_id: int
    store_id: int | None
    scopes: frozenset[str]

    @property
    def is_kiosk(self) -> bool:
        return self.store_id is not None


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.replace(" ", ",").split(",") if s.strip())
    unknown = sorted(scopes - SCOPES.keys())
    if unknown or not scopes:
        raise ConfigError(f"unknown scopes {', '.join(unknown) or '(none given)'}: choose from {', '.join(SCOPES)}")
    return scopes


def create_key(session: Session, tenant: str, scopes: frozenset[str], expires_days: int, store: str | None = None,
               label: str = "") -> tuple[ApiKey, str]:
    """A new key row and its token (shown once: only its hash is stored)."""
    if expires_days <= 0:
        raise ConfigError(f"--expires-days must be positive, got {expires_days}")
    tenant_row = tenant_named(session, tenant)
    store_id = store_of_tenant(session, tenant_row, store) if store else None
    denied = sorted(scopes & KIOSK_DENIED) if store_id is not None else []
    if denied:
        raise ConfigError(f"a kiosk key (--store) cannot hold {', '.join(denied)}: create a tenant key for that")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    row = ApiKey(id=key_id, tenant_id=tenant_row.id, store_id=store_id, scopes=" ".join(sorted(scopes)),
                 secret_sha256=_hash(secret), label=label, expires_at=utc_now() + timedelta(days=expires_days))
    session.add(row)
    session.commit()
    session.refresh(row)
    return row, f"{_PREFIX}_{key_id}_{secret}"


def revoke_key(session: Session, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise ConfigError(f"no API key {key_id!r}: `footfit keys list` shows the key ids")
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        session.add(row)
        session.commit()
        session.refresh(row)
    return row


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(ApiKey.tenant_id, ApiKey.created_at)))


def authenticate(session: Session, token: str | None, now: datetime | None = None) -> Principal:
    """The principal of a bearer token; Unauthenticated for a missing, malformed, unknown, expired or revoked key."""
    if not token:
        raise Unauthenticated("no API key: send it as 'Authorization: Bearer ff_...' (footfit keys create)")
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != _PREFIX:
        raise Unauthenticated("malformed API key: it reads ff_<key id>_<secret>, exactly as `footfit keys create` "
                              "printed it")
    row = session.get(ApiKey, parts[1])
    if row is None or not hmac.compare_digest(row.secret_sha256, _hash(parts[2])):
        raise Unauthenticated("unknown API key: check it, or create one with `footfit keys create`")
    if row.revoked_at is not None:
        raise Unauthenticated(f"API key {row.id} was revoked on {row.revoked_at:%Y-%m-%d}: use a current key")
    if row.expires_at <= (now or utc_now()):
        raise Unauthenticated(f"API key {row.id} expired on {row.expires_at:%Y-%m-%d}: create a new key")
    return Principal(row.id, row.tenant_id, row.store_id, frozenset(row.scopes.split()))


def require_scope(principal: Principal, scope: str) -> None:
    if principal.is_kiosk and scope in KIOSK_DENIED:
        raise Forbidden(f"kiosk keys cannot use {scope}: this needs a tenant key")
    if scope not in principal.scopes:
        raise Forbidden(f"API key {principal.key_id} lacks the scope {scope} ({SCOPES[scope]}): create a key "
                        f"with it")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
