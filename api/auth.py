"""API keys: created with a tenant (and, for a kiosk, a store), shown once, stored as the SHA-256 of a random
secret, scoped, expiring, revocable; customer session tokens, the short-lived credential of one shopper's browser;
and the check every request passes (`authenticate`, `require_scope`).

A key reads `ff_<key id>_<secret>`: the key id (12 hex digits) finds the row, the secret (256 random bits) is
compared by hash in constant time. The key id is what the audit log records as the actor.

A webshop must never put a key in a browser: its key reads every passport of the tenant. Its server opens a
**customer session token** (`ffs_<session id>_<secret>`, stored like a key) for the logged-in customer instead:
it lives minutes (service.customer_session_minutes), holds only SESSION_SCOPES, and its Principal carries the
customer, so that passport reads (api/repository/passports.py) find that customer's passports only. It ends when
revoked, when the key that opened it is revoked, and when the customer withdraws webshop consent or is erased.
The audit log records its use as `session:<session id>`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from api.models import ApiKey, Consent, Customer, SessionToken, utc_now
from api.tenancy import store_of_tenant, tenant_named
from core.errors import ConfigError, Forbidden, NotFound, Unauthenticated

SCOPES = {
    "scans:write": "start kiosk scans, upload and rescan passports",
    "scans:read": "the staff view of a passport: its point clouds",
    "customers:write": "create customers, record or withdraw their consent",
    "passports:read": "customers, consent, passports (measurements, sizes, fit results), feedback",
    "recommendations:read": "recommendations, the size of a product, try-on",
    "feedback:write": "record feedback events (recommended, tried with its outcome, chosen, bought, returned, exchanged, kept)",
    "passports:export": "export everything about a customer",
    "passports:erase": "erase a passport or a customer with everything derived",
    "catalog:write": "import the tenant's assortment (its SKUs, prices, stock), update the stock of its stores",
    "batch:run": "run mailing batch jobs",
    "audit:read": "the audit trail of a customer: who touched them and who tried",
    "sessions:create": "open and revoke customer session tokens, a shopper's browser's credential",
    "kpis:read": "KPIs of the advice: first size kept, returns and exchanges, by category, brand, store or A/B arm",
}
# The operator's own scope: writing the interior database every tenant shares. It is not in SCOPES, so no --scopes
# list grants it: only `footfit keys create --operator` does, on the operator's command line.
OPERATOR_SCOPE = "catalog:operator"
ALL_SCOPES = {**SCOPES, OPERATOR_SCOPE: "import the interior database every tenant shares (models, sizes, interior "
                                        "scans), run and roll back learning, read the catalogue's data quality; "
                                        "only the operator's keys hold it"}
KIOSK_DENIED = frozenset({"passports:export", "passports:erase", "catalog:write", "batch:run", "sessions:create",
                          "audit:read", OPERATOR_SCOPE})
SESSION_SCOPES = frozenset({"recommendations:read"})  # what a shopper's browser may do: its customer's fit answers
_PREFIX = "ff"
_SESSION_PREFIX = "ffs"
_SESSION_LIMIT = ("it reads only its customer's recommendations, sizes and try-on; the shop's server does the rest "
                  "with its API key")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key of one tenant, bound to a store for a kiosk; or a customer session token, bound to
    one customer of the tenant."""

    key_id: str  # the audit log's actor: the key id, or session:<session id>
    tenant_id: int
    store_id: int | None
    scopes: frozenset[str]
    customer_id: str | None = None  # a session token's customer: the only one whose passports it finds

    @property
    def is_kiosk(self) -> bool:
        return self.store_id is not None

    @property
    def is_customer_session(self) -> bool:
        return self.customer_id is not None


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.replace(" ", ",").split(",") if s.strip())
    if OPERATOR_SCOPE in scopes:
        raise ConfigError(f"{OPERATOR_SCOPE} is the operator's own scope: create the operator's key with --operator")
    unknown = sorted(scopes - SCOPES.keys())
    if unknown or not scopes:
        raise ConfigError(f"unknown scopes {', '.join(unknown) or '(none given)'}: choose from {', '.join(SCOPES)}")
    return scopes


def create_key(session: Session, tenant: str, scopes: frozenset[str], expires_days: int, store: str | None = None,
               label: str = "", operator: bool = False) -> tuple[ApiKey, str]:
    """A new key row and its token (shown once: only its hash is stored); an `operator` key also holds
    OPERATOR_SCOPE."""
    if expires_days <= 0:
        raise ConfigError(f"--expires-days must be positive, got {expires_days}")
    scopes = scopes | {OPERATOR_SCOPE} if operator else scopes
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


def open_session(session: Session, opener: Principal, customer: Customer, minutes: int) -> tuple[SessionToken, str]:
    """A new customer session row (added to `session`, committed by the caller with its audit entry) and its token
    (shown once: only its hash is stored)."""
    session_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    row = SessionToken(id=session_id, customer_id=customer.id, opened_by=opener.key_id, secret_sha256=_hash(secret),
                       expires_at=utc_now() + timedelta(minutes=minutes))
    session.add(row)
    return row, f"{_SESSION_PREFIX}_{session_id}_{secret}"


def revoke_session(session: Session, customer: Customer, session_id: str) -> SessionToken:
    """Revoke one of the customer's sessions (again: no change); committed by the caller."""
    row = session.get(SessionToken, session_id)
    if row is None or row.customer_id != customer.id:
        raise NotFound(f"customer {customer.loyalty_id!r} has no session {session_id!r}: use the id that "
                       f"POST /v1/customers/{customer.loyalty_id}/sessions answered")
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        session.add(row)
    return row


def authenticate(session: Session, token: str | None, now: datetime | None = None) -> Principal:
    """The principal of a bearer token (an API key or a customer session token); Unauthenticated for a missing,
    malformed, unknown, expired or revoked one."""
    if not token:
        raise Unauthenticated("no API key: send it as 'Authorization: Bearer ff_...' (footfit keys create)")
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] not in (_PREFIX, _SESSION_PREFIX):
        raise Unauthenticated("malformed API key: it reads ff_<key id>_<secret>, exactly as `footfit keys create` "
                              "printed it (a customer session token: ffs_<id>_<secret>, as the service issued it)")
    now = now or utc_now()
    if parts[0] == _SESSION_PREFIX:
        return _session_principal(session, parts[1], parts[2], now)
    row = session.get(ApiKey, parts[1])
    if row is None or not hmac.compare_digest(row.secret_sha256, _hash(parts[2])):
        raise Unauthenticated("unknown API key: check it, or create one with `footfit keys create`")
    if row.revoked_at is not None:
        raise Unauthenticated(f"API key {row.id} was revoked on {row.revoked_at:%Y-%m-%d}: use a current key")
    if row.expires_at <= now:
        raise Unauthenticated(f"API key {row.id} expired on {row.expires_at:%Y-%m-%d}: create a new key")
    return Principal(row.id, row.tenant_id, row.store_id, frozenset(row.scopes.split()))


def _session_principal(session: Session, session_id: str, secret: str, now: datetime) -> Principal:
    found = session.exec(select(SessionToken, Customer.tenant_id, ApiKey.revoked_at)
                         .join(Customer, Customer.id == SessionToken.customer_id)
                         .join(ApiKey, ApiKey.id == SessionToken.opened_by)
                         .where(SessionToken.id == session_id)).first()
    if found is None or not hmac.compare_digest(found[0].secret_sha256, _hash(secret)):
        raise Unauthenticated("unknown customer session token (or its customer was erased): open the page again "
                              "from the shop, whose server opens a new session")
    row, tenant_id, key_revoked_at = found
    ended = _why_ended(session, row, key_revoked_at, now)
    if ended:
        raise Unauthenticated(f"customer session {row.id} {ended}: open the page again from the shop, whose server "
                              f"opens a new session (POST /v1/customers/{{loyalty_id}}/sessions)")
    return Principal(f"session:{row.id}", tenant_id, None, SESSION_SCOPES, customer_id=row.customer_id)


def _why_ended(session: Session, row: SessionToken, key_revoked_at: datetime | None, now: datetime) -> str:
    """Why a customer session has ended ("" while it lasts). Consent is asked at every use, so a withdrawal ends
    the customer's sessions at once, and giving consent again does not bring them back."""
    if row.revoked_at is not None:
        return f"was revoked at {row.revoked_at:%Y-%m-%d %H:%M} UTC"
    if key_revoked_at is not None:
        return f"ended when the key that opened it ({row.opened_by}) was revoked"
    if row.expires_at <= now:
        return f"expired at {row.expires_at:%Y-%m-%d %H:%M} UTC"
    withdrawn = session.exec(select(Consent.id).where(Consent.customer_id == row.customer_id,
                                                      Consent.purpose == "webshop", Consent.granted.is_(False),
                                                      Consent.recorded_at > row.created_at)).first()
    return "ended when the customer withdrew webshop consent" if withdrawn is not None else ""


def require_api_key(principal: Principal) -> None:
    """For the routes any key may call (scope None), but not a customer session token."""
    if principal.is_customer_session:
        raise Forbidden(f"a customer session token cannot call this: {_SESSION_LIMIT}")


def require_scope(principal: Principal, scope: str) -> None:
    if principal.is_customer_session and scope not in principal.scopes:
        raise Forbidden(f"a customer session token cannot use {scope} ({ALL_SCOPES[scope]}): {_SESSION_LIMIT}")
    if principal.is_kiosk and scope in KIOSK_DENIED:
        raise Forbidden(f"kiosk keys cannot use {scope}: this needs a tenant key")
    if scope not in principal.scopes:
        raise Forbidden(f"API key {principal.key_id} lacks the scope {scope} ({ALL_SCOPES[scope]}): create a key "
                        f"with it")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
