"""The service's commands: `footfit serve`, `footfit tenants|stores|kiosks|keys ...` and `footfit privacy
purge|audit`.
Each handler takes parsed arguments, prints, and returns an exit code; `add_service_commands` registers them."""

from __future__ import annotations

import argparse
import sys

from sqlmodel import Session

from api import audit, auth, privacy, tenancy
from api.db import open_service_db
from api.models import TenantStore
from core.errors import ConfigError
from core.malloc import bound_malloc_arenas
from core.settings import get_settings
from core.sizes import STORE_SIZE_SYSTEMS


def service_app():
    """The service's app on the settings' database: what each `footfit serve` worker process runs."""
    from api.app import create_app

    return create_app()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: give 1 or more service processes")
    service = get_settings().service
    host, port = args.host or service.host, args.port if args.port is not None else service.port
    if service.malloc_arenas:
        bound_malloc_arenas(service.malloc_arenas)
    open_service_db().dispose()  # migrate once, here, before any worker starts
    workers = f" with {args.workers} worker processes" if args.workers > 1 else ""
    print(f"footfit service on http://{host}:{port}/v1{workers} (OpenAPI at /openapi.json, docs at /docs); Ctrl-C "
          f"stops", file=sys.stderr, flush=True)
    if args.workers > 1:
        uvicorn.run("cli.service:service_app", factory=True, host=host, port=port, workers=args.workers,
                    log_level=args.log_level)
    else:
        uvicorn.run(service_app(), host=host, port=port, log_level=args.log_level)
    return 0


def _session() -> Session:
    return Session(open_service_db(), expire_on_commit=False)


def cmd_tenants_create(args: argparse.Namespace) -> int:
    with _session() as session:
        days = args.retention_days or get_settings().service.retention_days_default
        tenant = tenancy.create_tenant(session, args.name, days)
    print(f"tenant {tenant.name} created (retention {tenant.retention_days} days)")
    return 0


def cmd_tenants_retention(args: argparse.Namespace) -> int:
    with _session() as session:
        tenant = tenancy.set_retention(session, args.name, args.days)
    print(f"tenant {tenant.name}: passports are kept {tenant.retention_days} days after their last scan")
    return 0


def cmd_tenants_list(_args: argparse.Namespace) -> int:
    with _session() as session:
        for tenant, stores in tenancy.list_tenants(session):
            print(f"{tenant.name:24s} retention {tenant.retention_days:5d} days  stores {' '.join(stores) or '-'}")
    return 0


def cmd_stores_add(args: argparse.Namespace) -> int:
    with _session() as session:
        store = tenancy.add_store(session, args.tenant, args.code, args.size_system)
        size_system = session.get(TenantStore, store.id).size_system
    print(f"store {store.code} belongs to tenant {args.tenant} (sizes: {size_system})")
    return 0


def cmd_stores_update(args: argparse.Namespace) -> int:
    with _session() as session:
        tenancy.set_size_system(session, args.tenant, args.code, args.size_system)
    print(f"store {args.code} of tenant {args.tenant}: sizes shown in {args.size_system}")
    return 0


def cmd_kiosks_add(args: argparse.Namespace) -> int:
    with _session() as session:
        kiosk = tenancy.add_kiosk(session, args.tenant, args.store, args.rig, args.name)
    print(f"kiosk {kiosk.rig_serial} registered in store {args.store} of tenant {args.tenant}")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    days = args.expires_days or get_settings().service.key_expiry_days_default
    with _session() as session:
        scopes = frozenset() if args.operator and not args.scopes else auth.parse_scopes(args.scopes or "")
        key, token = auth.create_key(session, args.tenant, scopes, days, args.store, args.label, args.operator)
    print(token)
    print(f"key {key.id} of tenant {args.tenant}{f', store {args.store}' if args.store else ''}: scopes "
          f"{key.scopes}; expires {key.expires_at:%Y-%m-%d}. It is shown only now: store it safely.",
          file=sys.stderr)
    return 0


def cmd_keys_list(_args: argparse.Namespace) -> int:
    with _session() as session:
        names = {t.id: t.name for t, _ in tenancy.list_tenants(session)}
        for key in auth.list_keys(session):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else f"expires {key.expires_at:%Y-%m-%d}"
            kind = "kiosk " if key.store_id is not None else "tenant"
            print(f"{key.id}  {names[key.tenant_id]:20s} {kind} {state:20s} {key.scopes}  {key.label}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    with _session() as session:
        key = auth.revoke_key(session, args.key_id)
    print(f"key {key.id} revoked on {key.revoked_at:%Y-%m-%d %H:%M} UTC: it is refused from now on")
    return 0


def cmd_privacy_purge(_args: argparse.Namespace) -> int:
    with _session() as session:
        for result in privacy.purge_expired(session, get_settings().service.scan_rows_kept_days):
            print(f"{result.tenant:24s} retention {result.retention_days:5d} days: {result.passports} passports "
                  f"erased ({', '.join(f'{n} {t}' for t, n in sorted(result.deleted.items())) or 'nothing'})")
    return 0


def cmd_privacy_audit(args: argparse.Namespace) -> int:
    with _session() as session:
        tenant = tenancy.tenant_named(session, args.tenant)
        customer_id = audit.customer_id_named(session, tenant.id, args.customer)
        if customer_id is None:
            raise ConfigError(f"no customer {args.customer!r} in tenant {args.tenant}: give a customer's loyalty id, "
                              f"or for an erased customer the public id its erasure entry names")
        entries = audit.customer_trail(session, tenant.id, customer_id)
        audit.record(session, tenant.id, "cli:privacy-audit", "read", "customer", customer_id, "audit trail")
        session.commit()
    for e in entries:
        print(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.actor:20s} {e.action:8s} {e.object_type:9s} {e.object_id or '-':32s}  "
              f"{e.detail}")
    return 0


def add_service_commands(sub) -> None:
    serve = sub.add_parser("serve", help="run the fit service (HTTP API)",
                           description="Run the fit service on the settings' database (docs/api.md); migrations "
                                       "run at start.")
    serve.add_argument("--host", help="default: settings (FOOTFIT_SERVICE__HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="default: settings (FOOTFIT_SERVICE__PORT, 8000)")
    serve.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="service processes sharing the port (each takes requests and mailing jobs; they agree "
                            "through the database: docs/deployment.md)")
    serve.set_defaults(func=cmd_serve)

    tenants = _group(sub, "tenants", "retailers using the service")
    create = tenants.add_parser("create", help="create a tenant")
    create.add_argument("name")
    create.add_argument("--retention-days", type=int, help="keep passports this long after their last scan "
                                                           "(default: settings, 730)")
    create.set_defaults(func=cmd_tenants_create)
    retention = tenants.add_parser("retention", help="set a tenant's retention period")
    retention.add_argument("name")
    retention.add_argument("days", type=int)
    retention.set_defaults(func=cmd_tenants_retention)
    tenants.add_parser("list", help="tenants and their stores").set_defaults(func=cmd_tenants_list)

    stores = _group(sub, "stores", "a tenant's stores (the catalogue's stock locations)")
    add = stores.add_parser("add", aliases=["create"], help="give a tenant a store")
    add.add_argument("--tenant", required=True)
    add.add_argument("code", help="store code, as in the catalogue's stock column")
    add.add_argument("--size-system", choices=list(STORE_SIZE_SYSTEMS),
                     help="the sizes its staff and customers use, shown by the kiosk (default: eu for a new store)")
    add.set_defaults(func=cmd_stores_add)
    update = stores.add_parser("update", help="change a store's settings")
    update.add_argument("--tenant", required=True)
    update.add_argument("code")
    update.add_argument("--size-system", choices=list(STORE_SIZE_SYSTEMS), required=True,
                        help="the sizes its staff and customers use, shown by the kiosk")
    update.set_defaults(func=cmd_stores_update)

    kiosks = _group(sub, "kiosks", "scanner rigs in a tenant's stores")
    add = kiosks.add_parser("add", help="register a rig in a store")
    add.add_argument("--tenant", required=True)
    add.add_argument("--store", required=True)
    add.add_argument("--rig", required=True, metavar="SERIAL")
    add.add_argument("--name", default="")
    add.set_defaults(func=cmd_kiosks_add)

    keys = _group(sub, "keys", "API keys")
    create = keys.add_parser("create", help="create a key (printed once)",
                             description=f"Create an API key; it is printed once. Scopes: {', '.join(auth.SCOPES)}.")
    create.add_argument("--tenant", required=True)
    create.add_argument("--store", help="a kiosk key of this store (cannot export, erase, import or run batches)")
    create.add_argument("--scopes", help="comma-separated, e.g. passports:read,recommendations:read")
    create.add_argument("--operator", action="store_true",
                        help=f"the operator's key: it also holds {auth.OPERATOR_SCOPE} (write the interior database "
                             f"every tenant shares), which --scopes never grants")
    create.add_argument("--expires-days", type=int, help="default: settings (365)")
    create.add_argument("--label", default="", help="what the key is for")
    create.set_defaults(func=cmd_keys_create)
    keys.add_parser("list", help="every key (never the secret)").set_defaults(func=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_keys_revoke)

    privacy_group = _group(sub, "privacy", "privacy operations")
    privacy_group.add_parser("purge", help="erase passports past their tenant's retention period"
                             ).set_defaults(func=cmd_privacy_purge)
    trail = privacy_group.add_parser("audit", help="who touched a customer and who tried: their audit trail")
    trail.add_argument("--tenant", required=True)
    trail.add_argument("--customer", required=True, metavar="ID",
                       help="the loyalty id; for an erased customer, the public id the audit log names them by")
    trail.set_defaults(func=cmd_privacy_audit)


def _group(sub, name: str, help_text: str):
    parser = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")
